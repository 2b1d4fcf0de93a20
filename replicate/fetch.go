package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// The transports of the transfer engine (pull.go): the pack stream, batch
// streams and per-object GETs. They differ only in how objects travel.
// Every object goes through checkObject (kind allowed by its links, strict
// decoding) and repo.Verify (hash) before it is stored (the batch takes
// nothing else), and only objects the engine asked
// for are accepted: for a pack stream, a root or an object linked by one
// the stream already delivered; for batch and GET, the object requested.

// batchChunk is how many hashes one batch request asks for: big enough to
// amortise the round trip, small enough that a broken stream costs little.
const batchChunk = 16384

// batchStreams is how many batch responses are read at once.
const batchStreams = 2

// smallBody is how much of one object body a GET reads on its own: each
// concurrent GET may hold this much, but only one at a time may hold
// more (up to maxObjectBytes), so eight workers fed endless bodies hold
// ~72 MiB, not eight times the object bound.
const smallBody = 1 << 20

// fatalFetch marks errors that end the whole transfer (the primary is
// unreachable or broken, the local store fails), as opposed to one
// object's failure.
type fatalFetch struct{ err error }

func (f *fatalFetch) Error() string { return f.err.Error() }
func (f *fatalFetch) Unwrap() error { return f.err }

// badObject marks an object that arrived intact (it hashes to its name)
// but cannot be used: its kind is not one its links allow, or it does not
// decode. Fetching it again would bring the same bytes.
type badObject struct{ err error }

func (b *badObject) Error() string { return b.err.Error() }
func (b *badObject) Unwrap() error { return b.err }

// errWrongKind marks an object whose kind its links do not allow.
var errWrongKind = errors.New("wrong kind")

// isObjectLevel reports whether err concerns only the object requested: a
// 4xx answer for it, or a body that broke or did not verify. Anything else
// (unreachable after retries, 5xx after retries) is the primary's state.
func isObjectLevel(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode/100 == 4 && se.StatusCode != http.StatusTooManyRequests
	}
	var ff *fatalFetch
	return !errors.As(err, &ff)
}

// checkObject verifies one received object before it may be stored: its
// kind is one the links to it allow, and its payload decodes strictly as
// that kind, blobs included. Its hash is verified by repo.Verify, whose
// result is the only thing the batch takes, which every object goes
// through next; an object that fails here is hashed to tell a damaged one
// (ErrHashMismatch: worth another try; a mislabelled kind fails here too,
// as the hash covers the kind) from one that arrived intact but cannot be
// used (badObject: the same bytes would come again).
func checkObject(h repo.Hash, kind repo.Kind, payload []byte, want kindSet) error {
	err := usable(h, kind, want, decodeObject(h, kind, payload))
	if err == nil {
		return nil
	}
	if got := repo.HashObject(kind, payload); got != h {
		return fmt.Errorf("object %s failed verification (%s, %d bytes hash to %s): %w", h, kind, len(payload), got.Short(), repo.ErrHashMismatch)
	}
	return &badObject{err}
}

// usable is the verdict on an object that decoded as kind with decodeErr:
// a wrongKind when its links do not allow kind, else decodeErr.
func usable(h repo.Hash, kind repo.Kind, want kindSet, decodeErr error) error {
	if !want.has(kind) {
		return &wrongKind{h: h, kind: kind, want: want}
	}
	return decodeErr
}

// decodeObject decodes a payload strictly as kind. A tag must lead to a
// commit: refs name commits, and the walk follows a tag to what it names.
func decodeObject(h repo.Hash, kind repo.Kind, payload []byte) error {
	// repo.Validate reads a tree in place, without allocating one entry per
	// name of a flat zone's apex; a tag names a commit (repo.DecodeTag
	// refuses any other type).
	return decodeError(h, kind, repo.Validate(kind, payload))
}

// decodeError is decodeObject's error for repo.Validate's verdict err.
func decodeError(h repo.Hash, kind repo.Kind, err error) error {
	if err != nil {
		return fmt.Errorf("object %s (%s) does not decode: %w", h, kind, err)
	}
	return nil
}

// accept verifies one object a batch stream or a GET delivered for a
// request and queues it in the batch. Decoding and hashing happen before
// the lock, so concurrent fetchers do them in parallel. A verification error is returned
// as is (ErrHashMismatch: worth another try; badObject: final); a store
// failure is a fatalFetch.
func (p *puller) accept(h repo.Hash, kind repo.Kind, payload []byte) error {
	if err := checkObject(h, kind, payload, p.expectOf(h)); err != nil {
		return err
	}
	o, err := repo.Verify(h, kind, payload)
	if err != nil {
		return putError(h, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.put(o); err != nil {
		return putError(h, err)
	}
	p.stored(h, kind, payload)
	return nil
}

// putError classifies a failed verification or put: an object that does
// not hash to its name is damaged in transit; anything else
// is the local store failing, which ends the transfer.
func putError(h repo.Hash, err error) error {
	if errors.Is(err, repo.ErrHashMismatch) {
		return fmt.Errorf("object failed verification: %w", err)
	}
	return &fatalFetch{fmt.Errorf("storing object %s: %w", h, err)}
}

// stored counts an object queued in the batch. Caller holds p.mu (or is
// the only writer).
func (p *puller) stored(h repo.Hash, kind repo.Kind, payload []byte) {
	if p.got.add(h, kind, payload) {
		p.objects++
		p.bytes += int64(len(payload))
	}
	p.progress(false)
}

// fetch gets the objects in need, by the batch extension when offered,
// else (and for what batch streams keep leaving out) by concurrent GETs.
// Each object ends stored or in p.failed, unless an error ends the
// transfer.
func (p *puller) fetch(need []repo.Hash) error {
	if len(need) == 0 {
		return nil
	}
	p.total += len(need)
	st := make([]fetchState, len(need))
	rest := make([]int, len(need))
	for i := range rest {
		rest[i] = i
	}
	if p.useBatch {
		var err error
		if rest, err = p.fetchBatch(need, st); err != nil {
			return err
		}
	}
	return p.fetchV0(need, st, rest)
}

// fetchState is where one requested object stands.
type fetchState uint8

const (
	statePending fetchState = iota
	stateStored
	stateFailed
)

// fetchFailure is why an object could not be had, and the kinds a
// transport would have accepted it as then.
type fetchFailure struct {
	err  error
	want kindSet
}

// failObject records why an object could not be had; the targets that
// reach it fail with this error. An object refused for its kind has its
// kind remembered. Caller holds p.mu.
func (p *puller) failObject(h repo.Hash, err error) {
	p.noteKind(h, err)
	if _, dup := p.failed[h]; !dup {
		p.failed[h] = fetchFailure{err: err, want: p.expectOf(h)}
	}
}

// noteKind remembers the kind of an object refused for it (its hash
// verified, so the kind is what the object is). Caller holds p.mu.
func (p *puller) noteKind(h repo.Hash, err error) {
	var wk *wrongKind
	if errors.As(err, &wk) {
		p.actual[h] = wk.kind
	}
}

// wrongKind is the error of an object whose kind its links do not allow.
type wrongKind struct {
	h    repo.Hash
	kind repo.Kind
	want kindSet
}

func (e *wrongKind) Error() string {
	return fmt.Sprintf("object %s is a %s, but it is linked as %s", e.h, e.kind, e.want)
}

func (e *wrongKind) Unwrap() error { return errWrongKind }

// fetchBatch streams objects with the batch extension. It returns the
// positions in need it could not get (for the GET fallback, which gives a
// precise per-object error), or an error that ends the pull.
//
// Longer than 80 lines on purpose: the per-chunk retry budget, the split of
// refused chunks and the hand-over to GETs share the chunk loop's state.
func (p *puller) fetchBatch(need []repo.Hash, st []fetchState) ([]int, error) {
	tries := make([]uint8, len(need))
	pending := make([]int, len(need))
	for i := range pending {
		pending[i] = i
	}
	stuck := 0
	var lastErr error
	for len(pending) > 0 {
		if err := p.ctx.Err(); err != nil {
			return nil, fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
		}
		before := p.fetchedCount()
		var chunks [][]int
		for start := 0; start < len(pending); start += batchChunk {
			chunks = append(chunks, pending[start:min(len(pending), start+batchChunk)])
		}
		// Two streams in flight overlap the primary's reads with our
		// verification and writes.
		errs := make([]error, len(chunks))
		var wg sync.WaitGroup
		sem := make(chan struct{}, batchStreams)
		for k, chunk := range chunks {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				errs[k] = p.batchOnce(need, chunk, st, tries)
			}()
		}
		wg.Wait()
		for k, err := range errs {
			if err == nil {
				continue
			}
			var ff *fatalFetch
			if errors.As(err, &ff) && !isNetwork(ff) {
				return nil, err // the local store failed
			}
			chunk := chunks[k]
			var se *StatusError
			if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
				// "object <hex> not in primary": fail that one object and
				// ask again without it.
				if i, ok := notInPrimary(se, need, chunk); ok {
					p.mu.Lock()
					p.failObject(need[i], fmt.Errorf("object %s: %w", need[i], se))
					st[i] = stateFailed
					p.mu.Unlock()
					stuck = -1 // progress: one object settled
					continue
				}
			}
			if errors.As(err, &se) && se.StatusCode/100 == 4 && se.StatusCode != http.StatusTooManyRequests {
				// The primary refuses the batch request itself: fall back
				// to plain GETs for everything still missing.
				p.warn("batch request refused; falling back to object GETs", err)
				return unsettled(pending, st), nil
			}
			if p.ctx.Err() != nil {
				return nil, fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
			}
			lastErr = err
			p.warn("batch stream failed; re-requesting the rest", err)
		}
		next := unsettled(pending, st)
		if p.fetchedCount() > before || stuck < 0 {
			stuck = 0
		} else {
			stuck++
		}
		if len(next) > 0 && stuck > p.c.opts.RetryAttempts {
			if lastErr != nil && !isObjectLevel(lastErr) {
				return nil, lastErr
			}
			// The stream keeps leaving these out: let GETs say why.
			return next, nil
		}
		if len(next) > 0 && stuck > 0 {
			if !sleepCtx(p.ctx, backoff(p.c.opts.RetryMinDelay, p.c.opts.RetryMaxDelay, stuck-1, nil)) {
				return nil, fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
			}
		}
		pending = next
	}
	return nil, nil
}

// isNetwork tells a fatalFetch about the primary (unreachable) from one
// about the local store: only the former is retried.
func isNetwork(ff *fatalFetch) bool {
	var ne *netError
	return errors.As(ff.err, &ne)
}

// netError marks a request that could not be made or answered.
type netError struct{ err error }

func (n *netError) Error() string { return n.err.Error() }
func (n *netError) Unwrap() error { return n.err }

// notInPrimary finds the position in need of the hash a batch 404 names,
// if it is one of chunk.
func notInPrimary(se *StatusError, need []repo.Hash, chunk []int) (int, bool) {
	body := se.Body
	for k := 0; k+64 <= len(body); k++ {
		h, err := repo.ParseHash(body[k : k+64])
		if err != nil {
			continue
		}
		for _, i := range chunk {
			if need[i] == h {
				return i, true
			}
		}
		return -1, false
	}
	return -1, false
}

func (p *puller) fetchedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settled
}

// unsettled filters positions to those neither stored nor failed for good.
func unsettled(idx []int, st []fetchState) []int {
	var out []int
	for _, i := range idx {
		if st[i] == statePending {
			out = append(out, i)
		}
	}
	return out
}

// batchOnce requests one chunk and stores every frame that verifies. The
// primary must send exactly the requested objects in request order
// (wire.BatchRequest), so frame k must be object chunk[k]: anything else (an
// object not asked for, a repeat, more frames than requested) ends the
// stream. A frame that does not verify counts as a failed try for its
// object (re-requested until objectAttempts); one that verifies but is of
// a kind its links do not allow, or does not decode, fails the object.
func (p *puller) batchOnce(need []repo.Hash, chunk []int, st []fetchState, tries []uint8) error {
	req := wire.BatchRequest{Hashes: make([]string, len(chunk))}
	for k, i := range chunk {
		req.Hashes[k] = need[i].String()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	url := p.tr.base + wire.BatchPath
	resp, err := p.tr.do(p.ctx, http.MethodPost, wire.BatchPath, body, "application/json")
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) {
			err = &fatalFetch{&netError{err}}
		}
		return err
	}
	defer drain(resp)
	fr := wire.NewFrameReader(resp.Body, maxObjectBytes)
	for k := 0; ; k++ {
		h, kind, payload, err := fr.Next()
		if errors.Is(err, io.EOF) {
			// The count trailer is only sent after a complete stream; an
			// aborted one may end at a frame boundary.
			if resp.Trailer.Get(wire.ObjectCountTrailer) == "" {
				return fmt.Errorf("POST %s: stream ended without its %s trailer (aborted by the primary)", url, wire.ObjectCountTrailer)
			}
			if k < len(chunk) {
				return fmt.Errorf("POST %s: the primary sent %d of the %d objects requested", url, k, len(chunk))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("POST %s: %w", url, err)
		}
		if k >= len(chunk) {
			return fmt.Errorf("POST %s: the primary sent object %s after the %d objects requested", url, h.Short(), len(chunk))
		}
		i := chunk[k]
		if h != need[i] {
			return fmt.Errorf("POST %s: the primary sent object %s where %s was requested", url, h.Short(), need[i].Short())
		}
		err = p.accept(h, kind, payload)
		p.mu.Lock()
		switch {
		case err == nil:
			st[i] = stateStored
			p.settled++
		case errors.Is(err, repo.ErrHashMismatch):
			tries[i]++
			if tries[i] >= objectAttempts {
				p.failObject(h, fmt.Errorf("%w (from %s, %d tries)", err, url, tries[i]))
				st[i] = stateFailed
			}
		default:
			var bad *badObject
			if !errors.As(err, &bad) {
				p.mu.Unlock()
				return err // the local store failed
			}
			p.failObject(h, fmt.Errorf("%w (from %s)", err, url))
			st[i] = stateFailed
			p.settled++
		}
		p.mu.Unlock()
	}
}

// fetchV0 GETs objects concurrently over keep-alive connections. Each
// object that fails verification or breaks mid-body is retried from the
// network a few times and never stored; an unreachable primary ends the
// transfer.
func (p *puller) fetchV0(need []repo.Hash, st []fetchState, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(p.ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	var fatalOnce sync.Once
	var fatal error
	if p.big == nil {
		p.big = newBigBody()
	}
	big := p.big
	workers := min(p.c.opts.Concurrency, len(idx))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range work {
				var err error
				buf, err = p.fetchOne(ctx, need[i], &st[i], buf, big)
				if err != nil {
					fatalOnce.Do(func() { fatal = err; cancel(err) })
				}
			}
		}()
	}
feed:
	for _, i := range idx {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if fatal != nil {
		return fatal
	}
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
	}
	return nil
}

// fetchOne gets one object with up to objectAttempts network tries. It
// returns an error only when the whole transfer must stop. Once ctx is
// done it gives up quietly: the transfer is ending and the caller reports
// why. buf is the worker's reusable body buffer.
func (p *puller) fetchOne(ctx context.Context, h repo.Hash, st *fetchState, buf []byte, big bigBody) ([]byte, error) {
	var last error
tries:
	for try := 1; try <= objectAttempts; try++ {
		// Back off before each retry, but not past the end of ctx.
		if try > 1 && !sleepCtx(ctx, backoff(p.c.opts.RetryMinDelay, p.c.opts.RetryMaxDelay, try-2, nil)) {
			return buf, nil
		}
		if isDone(ctx) {
			return buf, nil
		}
		kind, body, release, err := p.getObject(ctx, h, buf, big)
		if err == nil {
			err = p.accept(h, kind, body)
		}
		if cap(body) <= smallBody {
			buf = body[:0] // keep a small buffer for the next object
		}
		release()
		if err == nil {
			p.mu.Lock()
			*st = stateStored
			p.settled++
			p.mu.Unlock()
			return buf, nil
		}
		last = err
		var bad *badObject
		var ff *fatalFetch
		var se *StatusError
		switch {
		case errors.As(err, &bad):
			break tries // the same bytes would come again
		case errors.As(err, &ff) && !isNetwork(ff):
			return buf, err // the local store failed
		case !isObjectLevel(err):
			return buf, err
		case errors.As(err, &se):
			break tries // a 4xx for this object will not change
		}
	}
	p.mu.Lock()
	p.failObject(h, last)
	*st = stateFailed
	p.settled++
	p.mu.Unlock()
	return buf, nil
}

// getObject reads one object body and returns its claimed kind. The body
// is read into buf's storage when it fits; release must be called once
// the body is no longer used.
func (p *puller) getObject(ctx context.Context, h repo.Hash, buf []byte, big bigBody) (repo.Kind, []byte, func(), error) {
	nop := func() {}
	path := wire.ObjectPath + h.String()
	resp, err := p.tr.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) {
			err = &fatalFetch{&netError{err}}
		}
		return "", buf[:0], nop, err
	}
	defer drain(resp)
	url := p.tr.base + path
	kind, err := repo.ParseKind(resp.Header.Get(wire.ObjectKindHeader))
	if err != nil {
		return "", buf[:0], nop, fmt.Errorf("GET %s: %s header: %w", url, wire.ObjectKindHeader, err)
	}
	if resp.ContentLength > maxObjectBytes {
		return "", buf[:0], nop, fmt.Errorf("GET %s: object of %d bytes exceeds the %d MiB limit", url, resp.ContentLength, maxObjectBytes>>20)
	}
	body, release, err := readBody(ctx, resp.Body, buf, big)
	if err != nil {
		release()
		if errors.Is(err, wire.ErrTooLarge) {
			return "", buf[:0], nop, fmt.Errorf("GET %s: object body exceeds the %d MiB limit", url, maxObjectBytes>>20)
		}
		return "", buf[:0], nop, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	return kind, body, release, nil
}

// bigBody is the one buffer GETs read bodies beyond smallBody into: a
// channel holding it while it is free. Whoever takes it reads and uses its
// body; the others wait. It is kept, grown to the largest body read, for
// the rest of the pull, so bodies at the bound do not each leave ~128 MiB
// of growing buffers to the collector.
type bigBody chan []byte

func newBigBody() bigBody {
	b := make(bigBody, 1)
	b <- nil
	return b
}

// readBody reads a whole object body of at most maxObjectBytes into buf's
// storage. Past smallBody it moves to the big buffer, waiting for it, so
// concurrent reads hold at most one large body between them; release gives
// the big buffer back (the body must not be used after it).
func readBody(ctx context.Context, r io.Reader, buf []byte, big bigBody) ([]byte, func(), error) {
	release := func() {}
	holding := false
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) > maxObjectBytes {
				return nil, release, wire.ErrTooLarge
			}
			grow := max(2*cap(buf), 4096)
			if grow > maxObjectBytes/4 {
				// Straight to the bound (one byte over: how a body too
				// large shows), rather than through a half-size buffer
				// held alongside it while it is copied.
				grow = maxObjectBytes + 1
			}
			if len(buf) >= smallBody && !holding {
				var b []byte
				select {
				case b = <-big:
				case <-ctx.Done():
					return nil, release, context.Cause(ctx)
				}
				holding = true
				if cap(b) < grow {
					b = make([]byte, 0, grow)
				}
				buf = append(b[:0], buf...)
				cur := &buf
				release = func() { big <- (*cur)[:0] }
				continue
			}
			nb := make([]byte, len(buf), grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > maxObjectBytes {
			return nil, release, wire.ErrTooLarge
		}
		if errors.Is(err, io.EOF) {
			return buf, release, nil
		}
		if err != nil {
			return nil, release, err
		}
	}
}

// sleepCtx waits for d and reports whether it did: false means ctx ended
// first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isDone reports whether ctx has ended, without waiting.
func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// packState is what a pull keeps while pack streams arrive, with what a
// stream may still send. A stream sends every object after an object
// linking it (Walk's order), so what it may send ("wanted") is the roots
// plus the links of the objects received, less those received; an object
// outside it is something nobody asked for, and ends the stream. Wanted
// objects are entries of p.got, the receipts, each replaced by its
// receipt when it comes (received.want); links a stream did not satisfy
// are dropped when the streams end and left to the closure check, which
// finds them absent.
type packState struct {
	// bases maps a tree not yet received to the local tree it replaces
	// (same place, in the tree of a local parent commit): children equal
	// to the base's are not wanted, since the primary's walk diffs against
	// the parents' trees too and never sends them. Without it, one changed
	// record in a flat zone would put every name of the zone in wanted.
	bases map[repo.Hash]repo.Hash
	links linkBatch

	// The links of the object being received (from) go in through
	// addLink, or pushLink for a big tree; linkErr is the first that
	// disagrees with what it names.
	from     repo.Hash
	linkErr  error
	addLink  func(link)
	pushLink func(link)
}

// addLink records a link of ps.from (want) and keeps the first that names
// an object received already as a kind it did not come as (see
// receiveFrame).
func (p *puller) addLink(l link) {
	k, got := p.want(l)
	if ps := p.pack; got && !l.want.has(k) && ps.linkErr == nil {
		ps.linkErr = fmt.Errorf("object %s links %s as %s, but it came as a %s: %w", ps.from, l.h, l.want, k, errWrongKind)
	}
}

// linkBatch holds the links of a big tree back by groups: their receipt
// slots are touched together, then they go in one by one (add), in the
// order they came. The apex of a flat zone links every name, and each of
// those lookups missed the cache on its own.
type linkBatch struct {
	ls [linkBatchSize]link
	ks [linkBatchSize]receiptKey
	n  int
}

const linkBatchSize = 64

func (b *linkBatch) push(p *puller, l link) {
	b.ls[b.n] = l
	b.n++
	if b.n == linkBatchSize {
		b.flush(p)
	}
}

// flush adds the links held.
func (b *linkBatch) flush(p *puller) {
	ky := p.got.keyer()
	for i := range b.n {
		b.ks[i] = ky.of(b.ls[i].h)
	}
	p.got.touchKeys(b.ks[:b.n])
	for i := range b.n {
		p.got.hint(b.ls[i].h, b.ks[i])
		p.addLink(b.ls[i])
	}
	b.n = 0
}

// want records that a received object links to l: the stream may send it,
// as a kind some link to it allows. It returns what l names when that was
// received already (ok), for the caller to compare with the link.
func (p *puller) want(l link) (kind repo.Kind, ok bool) {
	kind, ok, added := p.got.want(l.h, l.want)
	if added && !l.base.IsZero() {
		p.pack.bases[l.h] = l.base
	}
	return kind, ok
}

// reserveLinks is how many entries a tree must have for the receipts to
// make room for them all before its links go in.
const reserveLinks = 4096

// link is an object linked by a received one, with the kinds it may have.
type link struct {
	h    repo.Hash
	want kindSet
	base repo.Hash // the local tree it replaces, for a subtree (zero: none)
}

// packAll streams the closures of roots with the pack extension, one
// request per chunk of roots. A 404 is narrowed to the roots that caused
// it, as for walk. A chunk the primary refuses (another 4xx) is walked
// instead: its hashes come back in walked, for the batch and GET
// transports.
func (p *puller) packAll(roots []repo.Hash, known []string) (walked []repo.Hash, err error) {
	p.pack = &packState{bases: map[repo.Hash]repo.Hash{}}
	defer func() {
		p.pack = nil
		if p.got.wanted > 0 {
			p.sealed = false // links no stream satisfied: the check finds them
		}
		p.got.dropWanted()
	}()
	var refused []repo.Hash
	var chunkRoots func(chunk []repo.Hash) error
	chunkRoots = func(chunk []repo.Hash) error {
		for _, r := range chunk {
			p.got.setWanted(r, p.expectOf(r))
		}
		err := p.packOnce(chunk, known)
		if err != nil {
			p.sealed = false
		}
		var se *StatusError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
			if len(chunk) == 1 {
				p.rootErr[chunk[0]] = err
				return nil
			}
			// Which root is unknown? One pack per root: the others
			// stream as they would have.
			for _, r := range chunk {
				if err := chunkRoots([]repo.Hash{r}); err != nil {
					return err
				}
			}
			return nil
		case errors.As(err, &se) && se.StatusCode/100 == 4 && se.StatusCode != http.StatusTooManyRequests:
			p.warn("pack request refused; walking instead", err)
			refused = append(refused, chunk...)
			return nil
		}
		return err
	}
	for start := 0; start < len(roots); start += walkRootsPerRequest {
		if err := chunkRoots(roots[start:min(len(roots), start+walkRootsPerRequest)]); err != nil {
			return nil, err
		}
	}
	if len(refused) > 0 {
		if walked, err = p.postWalks(refused, known); err != nil {
			return nil, err
		}
	}
	return walked, nil
}

// packOnce sends one pack request and stores what the stream delivers. A
// status error (before any frame) is returned as is. A stream that breaks
// (reset, truncation, a missing count trailer, a malformed frame) or
// misbehaves (an object nobody asked for, a forged or undecodable one, one
// of a kind its links do not allow) is stopped but is not an error: the
// closure check finds what it did not deliver, and the other transports
// fetch that. Only a failing local store or a canceled pull end the
// transfer.
func (p *puller) packOnce(roots []repo.Hash, known []string) error {
	body, err := walkBody(roots, known)
	if err != nil {
		return err
	}
	url := p.tr.base + wire.PackPath
	stop := func(err error) error {
		p.sealed = false
		if p.ctx.Err() != nil {
			return fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
		}
		err = fmt.Errorf("pack stream from %s stopped: %w", p.tr.base, err)
		if p.streamErr == nil {
			p.streamErr = err
		}
		p.warn("pack stream stopped; fetching the rest separately", err)
		return nil
	}
	// The reader goroutine's request: canceled to stop it when the
	// receiver stops early.
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	resp, err := p.tr.do(ctx, http.MethodPost, wire.PackPath, body, "application/json")
	var se *StatusError
	if errors.As(err, &se) && se.StatusCode/100 == 4 && se.StatusCode != http.StatusTooManyRequests {
		return err // about the request: the caller narrows or walks instead
	}
	if err != nil {
		// Unreachable or failing after retries (a primary whose walk
		// hits a damaged store answers 500, or drops the connection once
		// the stream started): the other transports may still get what
		// the targets need, and fail precisely on what they cannot.
		return stop(err)
	}
	defer drain(resp)
	if ct := resp.Header.Get("Content-Type"); ct != wire.ObjectStreamContentType {
		return stop(fmt.Errorf("POST %s: content type %q, want %s", url, clipStr(ct), wire.ObjectStreamContentType))
	}
	// One goroutine reads, hashes and decodes the frames ahead while this
	// one checks them against the stream's state, in stream order, and
	// stores them.
	chunks := make(chan packChunk, packChunksAhead)
	ahead := newReadAhead(readAheadBytes)
	done := make(chan struct{})
	fr := wire.NewFrameReader(resp.Body, maxObjectBytes)
	ky := p.got.keyer()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readPack(ky, fr, chunks, ahead, done)
	}()
	defer func() {
		// Stop the reader wherever it is (reading, waiting for room,
		// sending) and wait for it, before drain reads the body.
		close(done)
		ahead.close()
		cancel()
		wg.Wait()
	}()
	for {
		c := <-chunks
		p.got.touch(c.frames)
		for i := range c.frames {
			if err := p.receiveFrame(&c.frames[i]); err != nil {
				var ff *fatalFetch
				if errors.As(err, &ff) {
					return err
				}
				return stop(err)
			}
		}
		ahead.give(c.cost)
		switch {
		case errors.Is(c.err, io.EOF):
			// The count trailer is only sent after a complete stream; an
			// aborted one may end at a frame boundary. (The reader read
			// the body to its end before sending this chunk.)
			if resp.Trailer.Get(wire.ObjectCountTrailer) == "" {
				return stop(fmt.Errorf("stream ended without its %s trailer (aborted by the primary)", wire.ObjectCountTrailer))
			}
			return nil
		case c.err != nil:
			return stop(c.err)
		}
	}
}

// How far the pack reader may run ahead of the receiver: frames are
// handed over in chunks (one wake-up per chunk, not per object), and the
// frames read ahead hold at most readAheadBytes, or one object larger
// than that (up to maxObjectBytes, as the frame reader's own buffer).
const (
	chunkFrames     = 256
	chunkBytes      = 512 << 10
	readAheadBytes  = 4 << 20
	packChunksAhead = 8
	frameOverhead   = 128 // a frame's share of the budget beyond its payload
)

// packFrame is one frame of a pack stream, checked as far as it can be
// without the stream's state: hashed (verr) and, when it hashes to its
// name, decoded strictly as its kind (decodeErr).
type packFrame struct {
	h         repo.Hash
	kind      repo.Kind
	obj       repo.Verified
	verr      error
	decodeErr error
	key       receiptKey             // h's receipt key
	links     [maxFrameLinks]keyHint // a small tree's links and their keys
}

// maxFrameLinks is how many links of a tree the reader keys ahead: a flat
// zone's name trees have one each.
const maxFrameLinks = 2

// checkFrame is the part of receiving an object that does not depend on
// the objects before it: hashing, decoding, and the receipt keys the
// receiver will look up.
func checkFrame(ky keyer, h repo.Hash, kind repo.Kind, payload []byte) packFrame {
	obj, verr := repo.Verify(h, kind, payload)
	return checkedFrame(ky, h, kind, obj, verr)
}

// checkedFrame is checkFrame for an object verified already (verr: why
// it did not verify): it decodes it and keys it.
func checkedFrame(ky keyer, h repo.Hash, kind repo.Kind, obj repo.Verified, verr error) packFrame {
	f := packFrame{h: h, kind: kind, obj: obj, verr: verr, key: ky.of(h)}
	payload := f.obj.Payload()
	if f.verr == nil {
		f.decodeErr = decodeObject(h, kind, f.obj.Payload())
	}
	if f.verr == nil && f.decodeErr == nil && kind == repo.KindTree {
		if n, ok := repo.TreeEntryCount(payload); ok && n <= maxFrameLinks {
			i := 0
			_ = repo.DiffValidTree(h, payload, nil, func(_ repo.EntryKind, eh repo.Hash, _ []repo.Hash) error {
				f.links[i] = keyHint{h: eh, k: ky.of(eh), ok: true}
				i++
				return nil
			})
		}
	}
	return f
}

// largeFrame is the payload size from which readPack reads an object
// straight into the copy the store keeps, hashing and checking it as it
// arrives (repo.ReadVerified), instead of into the frame reader's buffer
// first.
const largeFrame = 256 << 10

// readLarge reads the payload of a large frame with repo.ReadVerified,
// into a frame as checkFrame makes it. A payload that arrived whole but
// does not hash to its name, or does not decode, is not the stream's
// error but the object's (in the frame); err is the stream's.
func readLarge(h repo.Hash, kind repo.Kind, n int, r io.Reader) (f packFrame, err error) {
	f = packFrame{h: h, kind: kind}
	var invalid error
	f.obj, invalid, err = repo.ReadVerified(h, kind, n, r)
	switch {
	case errors.Is(err, repo.ErrHashMismatch):
		f.verr = err
		return f, nil
	case err != nil:
		return f, err
	}
	f.decodeErr = decodeError(h, kind, invalid)
	return f, nil
}

// packChunk is frames read ahead together. err is what ended the stream
// after them (io.EOF: its clean end); cost is their share of the read-ahead
// budget.
type packChunk struct {
	frames []packFrame
	cost   int
	err    error
}

// readPack reads, hashes and decodes the frames of a pack stream and sends
// them in chunks, in stream order, until the stream ends (the last chunk
// carries why) or done is closed.
func readPack(ky keyer, fr *wire.FrameReader, out chan<- packChunk, ahead *readAhead, done <-chan struct{}) {
	var c packChunk
	send := func() bool {
		select {
		case out <- c:
			c = packChunk{}
			return true
		case <-done:
			return false
		}
	}
	// A large frame is read and verified by take, into large.
	var large packFrame
	var largeSize int
	take := func(h repo.Hash, kind repo.Kind, n int, r io.Reader) (err error) {
		largeSize = n
		large, err = readLarge(h, kind, n, r)
		return err
	}
	for {
		large = packFrame{}
		h, kind, payload, err := fr.NextFunc(largeFrame, take)
		if err != nil {
			c.err = err
			send()
			return
		}
		// A frame costs its payload's length, kept or not: a stream of
		// large frames that fail is handed over frame by frame too.
		size := len(payload)
		if large.kind != "" {
			size = largeSize
		}
		cost := min(size+frameOverhead, readAheadBytes)
		// Hand over what is pending before waiting for room, so the room
		// waited for is never held by this goroutine.
		if len(c.frames) > 0 && c.cost+cost > chunkBytes && !send() {
			return
		}
		if !ahead.take(cost) {
			return
		}
		if c.frames == nil {
			c.frames = make([]packFrame, 0, chunkFrames)
		}
		if large.kind != "" {
			large.key = ky.of(h)
			c.frames = append(c.frames, large)
		} else {
			c.frames = append(c.frames, checkFrame(ky, h, kind, payload))
		}
		c.cost += cost
		if (len(c.frames) == chunkFrames || c.cost >= chunkBytes) && !send() {
			return
		}
	}
}

// readAhead is the room, in bytes, for frames read ahead of the receiver.
type readAhead struct {
	mu     sync.Mutex
	cond   sync.Cond
	free   int
	closed bool
}

func newReadAhead(n int) *readAhead {
	r := &readAhead{free: n}
	r.cond.L = &r.mu
	return r
}

// take waits for n bytes of room and takes them; false once closed.
func (r *readAhead) take(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.free < n && !r.closed {
		r.cond.Wait()
	}
	r.free -= n
	return !r.closed
}

// give returns room taken.
func (r *readAhead) give(n int) {
	r.mu.Lock()
	r.free += n
	r.mu.Unlock()
	r.cond.Signal()
}

// close wakes a waiting take for good.
func (r *readAhead) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// receive checks one object of a pack stream and stores it (receiveFrame).
func (p *puller) receive(h repo.Hash, kind repo.Kind, payload []byte) error {
	f := checkFrame(p.got.keyer(), h, kind, payload)
	return p.receiveFrame(&f)
}

// receiveFrame checks one object of a pack stream, which checkFrame
// hashed and decoded, against what the stream may send, and stores it. An
// object the stream may not send, or that fails checkObject's checks, is
// an error that stops the stream; a store failure is a fatalFetch.
func (p *puller) receiveFrame(f *packFrame) error {
	ps := p.pack
	h, kind := f.h, f.kind
	p.got.hint(h, f.key)
	p.got.hints = f.links
	// Nothing received is wanted (its receipt replaces its link, and links
	// to it are not added again), so only an object not wanted may be a
	// repeat.
	want, ok, dup := p.got.wantedAs(h)
	if dup {
		return fmt.Errorf("object %s was sent twice", h)
	}
	if !ok {
		return fmt.Errorf("object %s (%s) was not asked for: it is no root, and no object sent before it links to it", h, kind)
	}
	if f.verr != nil {
		return putError(h, f.verr)
	}
	if err := usable(h, kind, want, f.decodeErr); err != nil {
		p.noteKind(h, err)
		return &badObject{err}
	}
	if want != kindBit(kind) {
		// Links that disagree on its kind: one of them is wrong, which
		// only the walk tells apart.
		p.sealed = false
	}
	if err := p.put(f.obj); err != nil {
		return putError(h, err)
	}
	payload := f.obj.Payload()
	// The links go straight into wanted, never into a list: a flat zone's
	// apex links every name of the zone (a million, for a 1M-record zone).
	// A link to an object received already is compared with what it is
	// now, as the object was compared with the links before it when it
	// came: a link of another kind stops the stream, as an object of a
	// kind its links do not allow does. (The closure check compares every
	// link it walks with the receipt too; this is where the stream is
	// told.)
	// usable passed: checkFrame decoded the payload strictly. The link
	// callbacks are made once per stream, not per object.
	if ps.addLink == nil {
		ps.addLink = p.addLink
		ps.pushLink = func(l link) { ps.links.push(p, l) }
	}
	ps.from, ps.linkErr = h, nil
	var err error
	if kind == repo.KindTree && !f.links[0].ok {
		// A tree the reader did not key the links of (a big one): its
		// links go in by groups whose slots are touched first.
		err = p.packLinks(h, kind, payload, true, ps.pushLink)
		ps.links.flush(p)
	} else {
		err = p.packLinks(h, kind, payload, true, ps.addLink)
	}
	linkErr := ps.linkErr
	ps.linkErr = nil
	if err != nil {
		return err // checkObject decoded it, so this is unexpected
	}
	delete(ps.bases, h)
	p.stored(h, kind, payload)
	p.total = p.objects + p.got.wanted
	return linkErr
}

// packLinks calls add with each object a received one links to, less what
// the primary will not send because it equals what a local parent has at
// the same place. valid says payload was decoded strictly already (see
// linkTree).
func (p *puller) packLinks(h repo.Hash, kind repo.Kind, payload []byte, valid bool, add func(link)) error {
	switch kind {
	case repo.KindTree:
		return p.linkTree(h, payload, valid, add)
	case repo.KindCommit:
		return p.linkCommit(payload, add)
	case repo.KindTag:
		t, err := repo.DecodeTag(payload)
		if err != nil {
			return err
		}
		add(link{h: t.Object, want: kindBit(t.Type)})
	}
	return nil
}

// linkCommit lists a commit's parents and tree. When a parent is local,
// its tree is the base the new tree is compared with, as the primary's
// walk does; an unchanged tree is not sent at all.
func (p *puller) linkCommit(payload []byte, add func(link)) error {
	c, err := repo.DecodeCommit(payload)
	if err != nil {
		return err
	}
	var base repo.Hash
	for _, parent := range c.Parents {
		add(link{h: parent, want: setCommit})
		if !base.IsZero() {
			continue
		}
		if kind, pp, err := p.local.Get(parent); err == nil && kind == repo.KindCommit {
			if pc, err := repo.DecodeCommit(pp); err == nil {
				base = pc.Tree
			}
		}
	}
	if !base.IsZero() && base == c.Tree {
		// The tree of a local parent: the primary does not send it. (A
		// tree named by the zero hash, which nothing has, is a link as
		// any other: a sealed pull must see it wanted and never sent.)
		return nil
	}
	add(link{h: c.Tree, want: setTree, base: base})
	return nil
}

// linkTree lists a tree's entries, skipping those equal to the entry at
// the same place in its base (a local tree at the same place in a parent
// commit: the primary's walk diffs against it and never sends them), by
// the same comparison as the primary's walk (repo.DiffTree). Every entry of
// the new tree is decoded and checked, skipped or not: here unless valid
// says it was already (a pack frame is validated as it is read, and in a
// flat zone's apex checking 100,000s of identical entries a second time
// was as long as the comparison itself; repo.DiffValidTree steps over
// them).
func (p *puller) linkTree(h repo.Hash, payload []byte, valid bool, add func(link)) error {
	var es []walk.DiffEntry // what differs from a base, while few do
	diffTree := repo.DiffTree
	if valid {
		diffTree = repo.DiffValidTree
	}
	diff := func(bases [][]byte) error {
		return diffTree(h, payload, bases, func(kind repo.EntryKind, eh repo.Hash, same []repo.Hash) error {
			l := link{h: eh, want: kindBit(kind.ObjectKind())}
			if kind == repo.EntrySubtree && len(same) > 0 {
				l.base = same[0]
			}
			add(l)
			if bases != nil && len(es) <= maxDiffEntries {
				es = append(es, walk.DiffEntry{Kind: kind, Hash: eh, Same: slices.Clone(same)})
			}
			return nil
		})
	}
	base, ok := p.pack.bases[h]
	if !ok {
		if n, ok := repo.TreeEntryCount(payload); ok && n >= reserveLinks {
			p.got.m.reserve(n) // each entry becomes a wanted link or is one
		}
		return diff(nil)
	}
	// The base is read in place: in a flat zone it is the apex tree, one
	// entry per name (4 MB for 100,000 names), which a copy would double.
	var diffErr error
	called := false
	readErr := repo.Peek(p.local, base, func(kind repo.Kind, kp []byte) error {
		if kind != repo.KindTree {
			return nil
		}
		called = true
		diffErr = diff([][]byte{kp})
		return diffErr
	})
	if called {
		if diffErr == nil {
			// The closure check compares h with the same base (the tree
			// of the same local parent) when that parent is known: it
			// takes this instead of comparing again.
			p.got.diffs.add(h, base, es)
		}
		return diffErr
	}
	// A base that cannot be read as a tree (readErr, or another kind) is
	// compared with as nothing: every entry is wanted, which only allows
	// more; the closure check walks the target whatever the stream sends.
	_ = readErr
	return diff(nil)
}
