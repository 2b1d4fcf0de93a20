package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func (s *Server) handleBanner(w http.ResponseWriter, r *http.Request) {
	b := s.Banner
	if b == "" {
		b = defaultBanner
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := io.WriteString(w, b); err != nil {
		s.sendFailed(r, err)
	}
}

func (s *Server) handleRefs(w http.ResponseWriter, r *http.Request) {
	rp, release, ok := s.snapshot(w, r)
	if !ok {
		return
	}
	defer release()
	resp, err := s.refs(rp)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	body, err := wire.EncodeRefs(resp)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if !s.V0Only {
		h.Set(wire.CapabilitiesHeader, s.capabilities())
		h.Set("Cache-Control", "no-cache")
	}
	if _, err := w.Write(body); err != nil {
		s.sendFailed(r, err)
	}
}

func (s *Server) refs(rp *repo.Repo) (*wire.RefsResponse, error) {
	zones, err := rp.Zones()
	if err != nil {
		return nil, fmt.Errorf("list zones: %w", err)
	}
	branches, err := rp.Branches("")
	if err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	resp := &wire.RefsResponse{Zones: zones, Branches: make([]wire.Branch, 0, len(branches))}
	if resp.Zones == nil {
		resp.Zones = []string{}
	}
	for _, b := range branches {
		resp.Branches = append(resp.Branches, wire.Branch{Zone: b.Zone, Name: b.Name, Hash: b.Hash.String()})
	}
	if !s.V0Only {
		tags, err := rp.Tags("")
		if err != nil {
			return nil, fmt.Errorf("list tags: %w", err)
		}
		for _, t := range tags {
			resp.Tags = append(resp.Tags, wire.Branch{Zone: t.Zone, Name: t.Name, Hash: t.Hash.String()})
		}
	}
	return resp, nil
}

var errWalkTooLarge = errors.New("walk result too large")

func (s *Server) handleObject(w http.ResponseWriter, r *http.Request) {
	h, err := wire.ParseHash(strings.TrimPrefix(r.URL.Path, wire.ObjectPath))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad hash: "+err.Error())
		return
	}
	if !s.V0Only && etagMatches(r.Header.Get("If-None-Match"), h) {
		// Objects never change: a client holding this ETag holds the object.
		setImmutable(w.Header(), h)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	rp, release, ok := s.snapshot(w, r)
	if !ok {
		return
	}
	defer release()
	// Through the cache, as walk reads: a v0 client fetches each object the
	// walk just listed, the large new apex tree of a flat zone among them.
	var kind repo.Kind
	var payload []byte
	err = rp.View(func(rd repo.Reader) error {
		var err error
		kind, payload, err = s.reader(rd).Get(h)
		return err
	})
	if errors.Is(err, repo.ErrNotFound) {
		if s.Logger != nil {
			s.Logger.Debug("replicate server: object not found", "hash", h.String())
		}
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Sprintf("read object %s: %v", h.Short(), err))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set(wire.ObjectKindHeader, string(kind))
	if !s.V0Only {
		setImmutable(hd, h)
	}
	hd.Set("Content-Length", strconv.Itoa(len(payload)))
	s.countServed(payload)
	if _, err := w.Write(payload); err != nil {
		s.sendFailed(r, err)
	}
}

// setImmutable lets caches keep an object's response for good: its
// content is its hash, so it never changes.
func setImmutable(hd http.Header, h repo.Hash) {
	hd.Set("Cache-Control", immutableCache)
	hd.Set("ETag", etag(h))
}

func etag(h repo.Hash) string { return `"` + h.String() + `"` }

func (s *Server) countServed(payload []byte) {
	if s.Stats != nil {
		s.Stats.ObjectsServed.Add(1)
		s.Stats.BytesServed.Add(int64(len(payload)))
	}
}

// etagMatches implements If-None-Match for one strong ETag: a list of
// quoted tags (weak ones compare equal too, RFC 9110 §13.1.2) or "*".
func etagMatches(header string, h repo.Hash) bool {
	if header == "" {
		return false
	}
	want := h.String()
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		if len(t) == 66 && t[0] == '"' && t[65] == '"' && strings.EqualFold(t[1:65], want) {
			return true
		}
	}
	return false
}

// badRequest answers a request body that could not be read or is invalid.
func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadRequest
	var tl *wire.TooLargeError
	if errors.As(err, &tl) {
		code = http.StatusRequestEntityTooLarge
	}
	s.fail(w, r, code, err.Error())
}

// requestBody bounds a request body at MaxBodyBytes; net/http then closes
// the connection of a request that goes beyond.
func (s *Server) requestBody(w http.ResponseWriter, r *http.Request) (io.Reader, int64) {
	limit := orDefault(s.MaxBodyBytes, defaultMaxBodyBytes)
	return http.MaxBytesReader(w, r.Body, limit), limit
}

// readWalk decodes a walk or pack request; on failure it has answered.
func (s *Server) readWalk(w http.ResponseWriter, r *http.Request) (roots, known []repo.Hash, ok bool) {
	body, limit := s.requestBody(w, r)
	roots, known, err := wire.ParseWalkRequest(body, limit, orDefault(s.MaxWalkHashes, defaultMaxWalkHashes))
	if err != nil {
		s.badRequest(w, r, err)
		return nil, nil, false
	}
	return roots, known, true
}

// readBatch decodes a batch request and returns its size in bytes; on
// failure it has answered.
func (s *Server) readBatch(w http.ResponseWriter, r *http.Request) (hashes []repo.Hash, size int64, ok bool) {
	cb := &countingBody{ReadCloser: r.Body}
	r.Body = cb
	body, limit := s.requestBody(w, r)
	hashes, err := wire.ParseBatchRequest(body, limit, orDefault(s.MaxBatchHashes, defaultMaxBatchHashes))
	if err != nil {
		s.badRequest(w, r, err)
		return nil, 0, false
	}
	return hashes, cb.n, true
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) walkFailed(w http.ResponseWriter, r *http.Request, err error) {
	var nf *walk.RootNotFoundError
	if errors.As(err, &nf) {
		s.fail(w, r, http.StatusNotFound, err.Error())
		return
	}
	s.fail(w, r, http.StatusInternalServerError, "walk: "+err.Error())
}

func (s *Server) walkOptions() walk.Options {
	return walk.Options{MaxKnownCommits: s.MaxKnownCommits}
}

func (s *Server) countWalk(st walk.Stats) {
	if s.Stats != nil {
		s.Stats.Walks.Add(1)
		s.Stats.WalkVisited.Add(int64(st.Visited()))
		s.Stats.WalkMissing.Add(int64(st.Missing))
	}
}

func (s *Server) handleWalk(w http.ResponseWriter, r *http.Request) {
	roots, known, ok := s.readWalk(w, r)
	if !ok {
		return
	}
	rp, release, ok := s.snapshot(w, r)
	if !ok {
		return
	}
	defer release()
	// The whole answer is computed before the status is sent, so a failure
	// is a proper error status, as with the daemon.
	var missing []repo.Hash
	var st walk.Stats
	start := time.Now()
	limit := orDefault(s.MaxWalkMissing, defaultMaxWalkMissing)
	err := rp.View(func(rd repo.Reader) error {
		var err error
		st, err = walk.Missing(s.reader(rd), roots, known, s.walkOptions(), func(h repo.Hash, _ repo.Kind, _ []byte) error {
			if len(missing) >= limit {
				return errWalkTooLarge
			}
			missing = append(missing, h)
			return nil
		})
		return err
	})
	if errors.Is(err, errWalkTooLarge) {
		s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("walk would list more than %d objects: ask for fewer roots at a time, or use pack", limit))
		return
	}
	if err != nil {
		s.walkFailed(w, r, err)
		return
	}
	s.countWalk(st)
	if s.Logger != nil {
		s.Logger.Debug("replicate server: walk", "roots", len(roots), "known", len(known), "missing", st.Missing, "visited", st.Visited(), "duration", time.Since(start).String())
	}
	w.Header().Set("Content-Type", "application/json")
	if err := wire.WriteMissing(w, missing); err != nil {
		s.sendFailed(r, err)
	}
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	hashes, reqBytes, ok := s.readBatch(w, r)
	if !ok {
		return
	}
	// A hash asked twice is sent once: repeating one large object (a flat
	// zone's apex tree) must not multiply the response.
	hashes = dedupHashes(hashes)
	limit := batchResponseLimit(reqBytes, orDefault(s.MaxBatchResponseBytes, defaultMaxBatchBytes))
	rp, release, ok := s.snapshot(w, r)
	if !ok {
		return
	}
	defer release()
	// One read transaction for the check and the stream: an object seen
	// present is still there when it is sent.
	err := rp.View(func(rd repo.Reader) error {
		for _, h := range hashes {
			ok, err := rd.Has(h)
			if err != nil {
				s.fail(w, r, http.StatusInternalServerError, fmt.Sprintf("read object %s: %v", h.Short(), err))
				return nil
			}
			if !ok {
				s.fail(w, r, http.StatusNotFound, fmt.Sprintf("object %s not in primary", h))
				return nil
			}
		}
		// Large objects come through the cache: a client that used walk
		// just had the walk read them (a flat zone's apex tree), and every
		// other secondary asks for the same ones.
		crd := s.reader(rd)
		fw := s.startStream(w)
		var sent int64
		for _, h := range hashes {
			// Read in place: the frame writer copies the payload out.
			called, capped := false, false
			err := repo.Peek(crd, h, func(kind repo.Kind, payload []byte) error {
				called = true
				// The first frame always goes, so every request makes progress.
				if fw.fw.Frames() > 0 && sent+int64(len(payload)) > limit {
					capped = true
					return nil
				}
				sent += int64(len(payload))
				return fw.frame(h, kind, payload)
			})
			if err != nil && !called {
				return fmt.Errorf("read object %s: %w", h.Short(), err)
			}
			if err != nil {
				return err
			}
			if capped {
				if s.Stats != nil {
					s.Stats.BatchCapped.Add(1)
				}
				break
			}
		}
		return fw.finish()
	})
	if err != nil {
		s.abort(r, err)
	}
}

// dedupHashes drops repeated hashes, keeping the first of each in order.
func dedupHashes(hashes []repo.Hash) []repo.Hash {
	seen := make(map[repo.Hash]struct{}, len(hashes))
	out := hashes[:0]
	for _, h := range hashes {
		if _, dup := seen[h]; dup {
			continue
		}
		seen[h] = struct{}{}
		out = append(out, h)
	}
	return out
}

// batchResponseLimit is the payload a batch request of reqBytes may
// start: batchAmplification bytes per request byte, at least
// batchFloorBytes (one large object always fits), at most max.
func batchResponseLimit(reqBytes, maxBytes int64) int64 {
	limit := int64(batchFloorBytes)
	if reqBytes > limit/batchAmplification {
		limit = reqBytes * batchAmplification
	}
	return min(limit, maxBytes)
}

func (s *Server) handlePack(w http.ResponseWriter, r *http.Request) {
	roots, known, ok := s.readWalk(w, r)
	if !ok {
		return
	}
	rp, release, ok := s.snapshot(w, r)
	if !ok {
		return
	}
	defer release()
	var fw *frameWriter
	err := rp.View(func(rd repo.Reader) error {
		// Roots are checked before the first frame so that an unknown root
		// is a clean 404, as with walk.
		for _, h := range roots {
			if h.IsZero() {
				continue
			}
			ok, err := rd.Has(h)
			if err != nil {
				return fmt.Errorf("read root %s: %w", h.Short(), err)
			}
			if !ok {
				return &walk.RootNotFoundError{Hash: h}
			}
		}
		// The walk and the stream read through one cached reader. The walk
		// emits a tree with the payload it read to diff it, so a tree is
		// read once; blobs (nil payload) are read here. The cache keeps
		// large trees (a flat zone's apex) for the next request, which
		// diffs against the same ones.
		crd := s.reader(rd)
		frame := func(h repo.Hash, kind repo.Kind, payload []byte) error {
			if fw == nil {
				fw = s.startStream(w)
			}
			return fw.frame(h, kind, payload)
		}
		// Blobs are read in sorted batches, in place: in store key order
		// rather than the walk's, which is random in key space (the
		// reader's cursors step through them). A blob links nothing and
		// comes after the tree that links it whenever it is sent, so
		// delaying it keeps the stream's order.
		var blobs []repo.Hash
		pf := &peekFramer{rd: crd, frame: frame}
		sendBlobs := func() error {
			repo.SortByHash(blobs, func(h *repo.Hash) *repo.Hash { return h })
			for _, h := range blobs {
				if err := pf.send(h, repo.KindBlob); err != nil {
					return err
				}
			}
			blobs = blobs[:0]
			return nil
		}
		st, err := walk.Missing(crd, roots, known, s.walkOptions(), func(h repo.Hash, kind repo.Kind, payload []byte) error {
			switch {
			case payload != nil:
				return frame(h, kind, payload)
			case kind == repo.KindBlob:
				blobs = append(blobs, h)
				if len(blobs) < packBlobBatch {
					return nil
				}
				return sendBlobs()
			}
			return pf.send(h, kind)
		})
		if err == nil {
			err = sendBlobs()
		}
		if err != nil {
			return err
		}
		s.countWalk(st)
		if fw == nil {
			fw = s.startStream(w)
		}
		return fw.finish()
	})
	if err == nil {
		return
	}
	if fw == nil {
		s.walkFailed(w, r, err)
		return
	}
	s.abort(r, err)
}

// peekFramer frames objects read in place. Its one read callback (made
// once: it escapes to the reader) finds the object in its fields.
type peekFramer struct {
	rd     repo.Reader
	frame  func(repo.Hash, repo.Kind, []byte) error
	look   func(repo.Kind, []byte) error
	h      repo.Hash
	kind   repo.Kind
	called bool
}

// send frames object h, linked as kind.
func (pf *peekFramer) send(h repo.Hash, kind repo.Kind) error {
	if pf.look == nil {
		pf.look = func(k repo.Kind, p []byte) error {
			pf.called = true
			if k != pf.kind {
				return fmt.Errorf("object %s is a %s where a %s is linked (%w)", pf.h.Short(), k, pf.kind, walk.ErrIncomplete)
			}
			return pf.frame(pf.h, pf.kind, p)
		}
	}
	pf.h, pf.kind, pf.called = h, kind, false
	err := repo.Peek(pf.rd, h, pf.look)
	if err != nil && !pf.called {
		return fmt.Errorf("read object %s: %w (%w)", h.Short(), err, walk.ErrIncomplete)
	}
	return err
}

// abort ends a response whose status was already sent: the connection is
// dropped so the client sees a truncated stream rather than a clean end.
func (s *Server) abort(r *http.Request, err error) {
	if s.Stats != nil {
		s.Stats.ServerErrors.Add(1)
	}
	if s.Logger != nil {
		s.Logger.Error("replicate server: stream aborted", "path", r.URL.Path, "error", err.Error())
	}
	panic(http.ErrAbortHandler)
}

// frameWriter writes the object stream of a batch or pack response and
// counts what it serves.
type frameWriter struct {
	s  *Server
	w  http.ResponseWriter
	fw *wire.FrameWriter
}

// startStream sends the 200 and the headers of an object stream.
func (s *Server) startStream(w http.ResponseWriter) *frameWriter {
	h := w.Header()
	h.Set("Content-Type", wire.ObjectStreamContentType)
	h.Set("Trailer", wire.ObjectCountTrailer)
	w.WriteHeader(http.StatusOK)
	return &frameWriter{s: s, w: w, fw: wire.NewFrameWriter(w)}
}

func (f *frameWriter) frame(h repo.Hash, kind repo.Kind, payload []byte) error {
	if err := f.fw.Frame(h, kind, payload); err != nil {
		return err
	}
	f.s.countServed(payload)
	return nil
}

// finish flushes the stream and sets the count trailer, which tells the
// client the stream is complete.
func (f *frameWriter) finish() error {
	if err := f.fw.Flush(); err != nil {
		return err
	}
	f.w.Header().Set(wire.ObjectCountTrailer, strconv.Itoa(f.fw.Frames()))
	return nil
}

// packBlobBatch is how many blob hashes a pack response holds back to read
// them in key order (512 KiB). It decides the order of the answer.
const packBlobBatch = 16384
