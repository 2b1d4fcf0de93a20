// Package server is the primary's side of replication: HTTP handlers that
// serve a repository to secondaries (Server), the bounds that keep a
// primary's memory in check whatever the number of secondaries, and the
// read-only snapshots of a directory another process writes (Snapshotter).
// It speaks the protocol through package wire and answers walks with
// package walk; it never calls the client (package replicate), which
// reaches it only through type aliases.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Server exposes a zonegit repo to secondaries over HTTP. Every request
// reads the current snapshot; correctness comes from content-addressed
// object bodies, not from session state. Server never writes.
//
// With V0Only the server is indistinguishable from a plain zonegit v0
// daemon: same routes, status codes, Content-Types and refs body bytes.
// Otherwise it also serves the extensions of DESIGN §4.2 (see
// wire.BatchRequest and wire.WalkRequest for their exact wire behaviour).
//
// Where the repository comes from, one of two ways:
//   - SnapshotFn, for a repository this process has open (and may write):
//     every request reads the *repo.Repo it returns.
//   - Snapshots, for a directory another process writes (the
//     zonegit-replicate serve command): a Snapshotter hands out read-only
//     copies and replaces them as the directory changes.
type Server struct {
	// SnapshotFn returns the repository to serve for one request, so
	// secondaries see the latest commits. The server does not close it.
	// Ignored when Snapshots is set.
	SnapshotFn func() (*repo.Repo, error)

	// Snapshots, when set, hands out a handle per request and is told when
	// the request is done with it (a *Snapshotter in production), so
	// handles can be replaced while requests are in flight.
	Snapshots SnapshotSource

	// V0Only disables every extension: the server then behaves exactly as a
	// plain zonegit v0 daemon (no capabilities header, no tags, no batch,
	// no pack, no cache headers).
	V0Only bool
	// Token, when set, requires "Authorization: Bearer <token>" on every
	// request (compared in constant time); others get 401.
	Token string

	// Limits; zero values take the defaults noted.
	MaxBodyBytes    int64 // request body cap for walk, pack and batch; default 8 MiB
	MaxWalkHashes   int   // roots+known per walk or pack; default 100,000
	MaxBatchHashes  int   // hashes per batch; default 50,000
	MaxKnownCommits int   // see walk.Options; default 100,000
	// MaxWalkMissing caps the hashes one walk response lists (memory and
	// response size); a walk that would list more gets 413 and should be
	// split by roots, or use pack, which streams. Default 10,000,000.
	MaxWalkMissing int
	// MaxBatchResponseBytes caps the payload bytes of one batch response.
	// A response is also capped relative to its request (256 bytes per
	// request byte, at least 16 MiB), so a small request cannot start a
	// huge transfer; a capped response ends early, after a whole frame,
	// and the client asks again for the rest (see BatchRequest). Default
	// 256 MiB.
	MaxBatchResponseBytes int64

	// Expensive requests (walk, pack and batch: they read and hold a
	// part of the store's objects in memory) are served at most
	// MaxConcurrent at a time (default 4); up to MaxQueued more wait for a
	// slot (default 64; negative: none), each at most QueueWait (default
	// 10s). Any other gets 503 with a Retry-After, which clients honour.
	// This bounds the server's memory whatever the number of secondaries;
	// cheap requests (refs, single objects) are not queued.
	MaxConcurrent int
	MaxQueued     int
	QueueWait     time.Duration

	// CacheBytes bounds the memory kept for large objects (256 KiB and
	// more: the apex trees of flat zones) that walks read repeatedly when
	// many secondaries pull the same change. Default 128 MiB; negative
	// disables the cache.
	CacheBytes int64

	// Banner is the text served on paths the server does not route (the
	// zonegit daemon answers those with 200 and a banner, and so do we).
	Banner string

	// Logger, when set, gets one line per failed request (4xx at Debug,
	// 5xx at Error) and per walk (Debug). Nothing secret is logged.
	Logger wire.Logger

	// Stats, when set, counts requests and work (zonegit-replicate serve
	// reports them when it stops).
	Stats *ServerStats

	cacheOnce sync.Once
	cache     *bigObjectCache

	gateOnce sync.Once
	gate     *gate
}

// reader wraps a snapshot reader with the large-object cache.
func (s *Server) reader(rd repo.Reader) repo.Reader {
	s.cacheOnce.Do(func() {
		budget := s.CacheBytes
		if budget == 0 {
			budget = 128 << 20
		}
		s.cache = newBigObjectCache(budget, 256<<10)
	})
	if s.cache.disabled {
		return rd
	}
	return cachedReader{Reader: rd, c: s.cache}
}

// SnapshotSource hands out repository handles. release must be called when
// the request no longer uses the handle.
type SnapshotSource interface {
	Acquire() (r *repo.Repo, release func(), err error)
}

// ServerStats are counters a Server updates atomically.
type ServerStats struct {
	Requests      atomic.Int64 // every request that reached a handler
	ClientErrors  atomic.Int64 // 4xx responses
	ServerErrors  atomic.Int64 // 5xx responses
	Walks         atomic.Int64 // walk and pack requests answered
	WalkVisited   atomic.Int64 // objects read by walks (walk.Stats.Visited)
	WalkMissing   atomic.Int64 // objects reported by walks
	ObjectsServed atomic.Int64 // objects sent (GET, batch, pack)
	BytesServed   atomic.Int64 // payload bytes sent
	Busy          atomic.Int64 // expensive requests refused with 503 (queue full or wait over)
	Queued        atomic.Int64 // expensive requests that had to wait for a slot
	PeakRunning   atomic.Int64 // most expensive requests served at once
	BatchCapped   atomic.Int64 // batch responses ended early at their size cap
}

const (
	defaultMaxBodyBytes   = 8 << 20
	defaultMaxWalkHashes  = 100000
	defaultMaxBatchHashes = 50000
	defaultMaxWalkMissing = wire.DefaultMaxWalkMissing
	defaultBanner         = "zonegit-replicate — replication endpoints under /v0\n"
	immutableCache        = "public, max-age=31536000, immutable"
)

// Defaults of the bounds on expensive requests and batch responses.
const (
	defaultMaxBatchBytes = 256 << 20
	defaultMaxConcurrent = 4
	defaultMaxQueued     = 64
	defaultQueueWait     = 10 * time.Second
	// A batch response may carry this many bytes per request byte (but
	// always batchFloorBytes, so one large object fits): a chunk of our
	// client's hashes is about 1.1 MB of request.
	batchAmplification = 256
	batchFloorBytes    = 16 << 20
)

// orDefault returns limit when it is set (positive), else def.
func orDefault[T ~int | ~int64](limit, def T) T {
	if limit > 0 {
		return limit
	}
	return def
}

// capabilities is the list announced in wire.CapabilitiesHeader ("" when
// V0Only).
func (s *Server) capabilities() string {
	if s.V0Only {
		return ""
	}
	return strings.Join([]string{wire.CapBatch, wire.CapTags, wire.CapPack}, ", ")
}

// RegisterHandlers wires the protocol endpoints onto mux under wire.BasePath,
// including the banner for unrouted paths below wire.BasePath. Callers can mount
// the same server alongside their existing /metrics endpoint by passing
// http.DefaultServeMux or any sub-mux.
func (s *Server) RegisterHandlers(mux *http.ServeMux) {
	mux.Handle(wire.RefsPath, s.wrap(http.MethodGet, s.handleRefs))
	mux.Handle(wire.WalkPath, s.wrap(http.MethodPost, s.gated(s.handleWalk)))
	mux.Handle(wire.ObjectPath, s.wrap(http.MethodGet, s.handleObject))
	if !s.V0Only {
		// In v0-only mode these paths fall through to /v0/objects/ and get
		// the daemon's "GET only" 405, as a v0 client would expect.
		mux.Handle(wire.BatchPath, s.wrap(http.MethodPost, s.gated(s.handleBatch)))
		mux.Handle(wire.PackPath, s.wrap(http.MethodPost, s.gated(s.handlePack)))
	}
	mux.Handle(wire.BasePath+"/", s.wrap(anyMethod, s.handleBanner))
}

// Handler returns a complete handler: the protocol endpoints and the banner
// on every other path, as the zonegit daemon serves them.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.RegisterHandlers(mux)
	mux.Handle("/", s.wrap(anyMethod, s.handleBanner))
	return mux
}

// NewHTTPServer returns an http.Server for h with timeouts that keep slow
// or stalled clients from holding connections: headers within 10 s, a
// request body within 1 min, a response within 15 min (a full pack of a
// million-record zone takes well under that on a LAN; a stalled reader is
// cut off), idle keep-alive connections closed after 2 min.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      15 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// statusWriter records the status for stats and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through for streamed responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// anyMethod is wrap's method for endpoints that answer every method.
const anyMethod = ""

// wrap adds what every endpoint does before its handler runs: counting,
// the bearer token check (401), then the method check, whose 405 "GET
// only" / "POST only" is the daemon's.
func (s *Server) wrap(method string, h func(w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: rw}
		if s.Stats != nil {
			s.Stats.Requests.Add(1)
			defer func() {
				switch {
				case sw.status >= 500:
					s.Stats.ServerErrors.Add(1)
				case sw.status >= 400:
					s.Stats.ClientErrors.Add(1)
				}
			}()
		}
		if s.Token != "" && !s.authorized(r) {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="zonegit"`)
			s.fail(sw, r, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if method != anyMethod && r.Method != method {
			s.fail(sw, r, http.StatusMethodNotAllowed, method+" only")
			return
		}
		h(sw, r)
	})
}

// gated admits h through the server's gate for expensive requests: it
// runs when a slot is free, after waiting in the queue if need be, and
// otherwise the client gets 503 with a Retry-After. The slot is taken
// before the request body is read, so waiting requests hold no decoded
// hashes.
func (s *Server) gated(h func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		g := s.getGate()
		release, retry, err := g.enter(r.Context(), s.Stats)
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left while queued; nobody to answer
			}
			if s.Stats != nil {
				s.Stats.Busy.Add(1)
			}
			// Shedding load is the gate working, not a failure: one
			// warning per interval says it is happening, instead of an
			// error line per refused request.
			if n, ok := g.noteRefusal(); ok && s.Logger != nil {
				s.Logger.Warn("replicate server: busy, answering walk, pack and batch requests with 503",
					"refused", n, "running", g.running.Load(), "queued", g.queued.Load())
			}
			w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer release()
		h(w, r)
	}
}

func (s *Server) getGate() *gate {
	s.gateOnce.Do(func() {
		queue := orDefault(s.MaxQueued, defaultMaxQueued)
		if s.MaxQueued < 0 {
			queue = 0
		}
		s.gate = newGate(orDefault(s.MaxConcurrent, defaultMaxConcurrent), queue, orDefault(s.QueueWait, defaultQueueWait))
	})
	return s.gate
}

// gate is a counting semaphore with a bounded, time-limited queue. Waiters
// are served in arrival order (a channel's blocked senders are queued).
type gate struct {
	slots   chan struct{}
	queued  atomic.Int64
	running atomic.Int64
	max     int64
	wait    time.Duration
	// held is a moving average of how long a slot is held (ns), to tell
	// refused clients when a retry is likely to get in.
	held atomic.Int64
	// refused counts refusals since the last warning, sent at most once
	// per busyLogInterval (lastWarn, unix ns).
	refused  atomic.Int64
	lastWarn atomic.Int64
}

const busyLogInterval = 10 * time.Second

// noteRefusal counts a refusal and reports whether it is time to warn, with
// the refusals since the last warning.
func (g *gate) noteRefusal() (int64, bool) {
	g.refused.Add(1)
	now := time.Now().UnixNano()
	last := g.lastWarn.Load()
	if now-last < int64(busyLogInterval) || !g.lastWarn.CompareAndSwap(last, now) {
		return 0, false
	}
	return g.refused.Swap(0), true
}

func newGate(slots, queue int, wait time.Duration) *gate {
	return &gate{slots: make(chan struct{}, slots), max: int64(queue), wait: wait}
}

var (
	errQueueFull = errors.New("server busy: too many walk, pack and batch requests queued; retry later")
	errQueueWait = errors.New("server busy: no slot for this walk, pack or batch request came free in time; retry later")
)

// enter waits for a slot. It returns the slot's release, or an error
// (queue full, waited too long, or ctx ended) and a suggested retry delay.
func (g *gate) enter(ctx context.Context, st *ServerStats) (release func(), retry time.Duration, err error) {
	select {
	case g.slots <- struct{}{}:
		return g.admitted(st), 0, nil
	default:
	}
	if g.queued.Add(1) > g.max {
		g.queued.Add(-1)
		return nil, g.retryAfter(), errQueueFull
	}
	if st != nil {
		st.Queued.Add(1)
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		g.queued.Add(-1)
		return g.admitted(st), 0, nil
	case <-t.C:
		g.queued.Add(-1)
		return nil, g.retryAfter(), errQueueWait
	case <-ctx.Done():
		g.queued.Add(-1)
		return nil, 0, ctx.Err()
	}
}

func (g *gate) admitted(st *ServerStats) func() {
	n := g.running.Add(1)
	if st != nil {
		for {
			peak := st.PeakRunning.Load()
			if n <= peak || st.PeakRunning.CompareAndSwap(peak, n) {
				break
			}
		}
	}
	start := time.Now()
	return func() {
		d := int64(time.Since(start))
		// An exponential moving average (1/8 weight) is enough for a hint.
		for {
			old := g.held.Load()
			next := d
			if old > 0 {
				next = old + (d-old)/8
			}
			if g.held.CompareAndSwap(old, next) {
				break
			}
		}
		g.running.Add(-1)
		<-g.slots
	}
}

// retryAfter estimates when the queue will have room: the time the
// requests now queued take to drain, between 1 and 30 seconds, spread by
// up to half again so refused clients do not all come back at once.
func (g *gate) retryAfter() time.Duration {
	d := time.Duration(g.held.Load()) * time.Duration(g.queued.Load()+1) / time.Duration(cap(g.slots))
	d = min(max(d, time.Second), 30*time.Second)
	return d + rand.N(d/2+1)
}

func (s *Server) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(auth[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) == 1
}

// fail writes a plain-text error like the daemon (http.Error) and logs it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if s.Logger != nil {
		if code >= 500 {
			s.Logger.Error("replicate server: request failed", "method", r.Method, "path", clipPath(r.URL.Path), "status", code, "error", msg)
		} else {
			s.Logger.Debug("replicate server: request refused", "method", r.Method, "path", clipPath(r.URL.Path), "status", code, "error", msg)
		}
	}
	http.Error(w, msg, code)
}

// sendFailed notes a response body that could not be written. The status
// is already sent, so there is nobody left to tell but the log: this is
// usually a client that went away, hence Debug.
func (s *Server) sendFailed(r *http.Request, err error) {
	if s.Logger != nil {
		s.Logger.Debug("replicate server: response not sent", "method", r.Method, "path", clipPath(r.URL.Path), "error", err.Error())
	}
}

func clipPath(p string) string {
	if len(p) > 100 {
		return p[:100] + "…"
	}
	return p
}

// snapshot returns the repository for one request and its release. When
// there is none it has answered, and ok is false: 503 when the source says
// to try again later (a writer holds the directory), 500 otherwise.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) (rp *repo.Repo, release func(), ok bool) {
	rp, release, err := s.acquire()
	switch {
	case err == nil:
		return rp, release, true
	case errors.Is(err, ErrSnapshotUnavailable):
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, err.Error())
	default:
		s.fail(w, r, http.StatusInternalServerError, "open repository: "+err.Error())
	}
	return nil, nil, false
}

func (s *Server) acquire() (*repo.Repo, func(), error) {
	if s.Snapshots != nil {
		return s.Snapshots.Acquire()
	}
	if s.SnapshotFn == nil {
		return nil, nil, errors.New("server has no repository (SnapshotFn and Snapshots are nil)")
	}
	r, err := s.SnapshotFn()
	return r, func() {}, err
}

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
			kind, payload, err := crd.Get(h)
			if err != nil {
				return fmt.Errorf("read object %s: %w", h.Short(), err)
			}
			// The first frame always goes, so every request makes progress.
			if fw.fw.Frames() > 0 && sent+int64(len(payload)) > limit {
				if s.Stats != nil {
					s.Stats.BatchCapped.Add(1)
				}
				break
			}
			if err := fw.frame(h, kind, payload); err != nil {
				return err
			}
			sent += int64(len(payload))
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
		// The walk and the stream read through one cached reader: the walk
		// emits a new tree (nil payload) before it diffs it, so the frame
		// read puts a large tree (a flat zone's apex) in the cache and the
		// diff that follows takes it from there instead of reading it from
		// the store a second time.
		crd := s.reader(rd)
		st, err := walk.Missing(crd, roots, known, s.walkOptions(), func(h repo.Hash, kind repo.Kind, payload []byte) error {
			if payload == nil {
				k, p, err := crd.Get(h)
				if err != nil {
					return fmt.Errorf("read object %s: %w (%w)", h.Short(), err, walk.ErrIncomplete)
				}
				if k != kind {
					return fmt.Errorf("object %s is a %s where a %s is linked (%w)", h.Short(), k, kind, walk.ErrIncomplete)
				}
				payload = p
			}
			if fw == nil {
				fw = s.startStream(w)
			}
			return fw.frame(h, kind, payload)
		})
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
