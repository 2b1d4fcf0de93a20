package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// batchChunk is how many hashes one batch request asks for: big enough to
// amortise the round trip, small enough that a broken stream costs little.
const batchChunk = 16384

// batchStreams is how many batch responses are read at once.
const batchStreams = 2

// fatalFetch marks errors that end the whole transfer (the primary is
// unreachable or broken), as opposed to one object's failure.
type fatalFetch struct{ err error }

func (f *fatalFetch) Error() string { return f.err.Error() }
func (f *fatalFetch) Unwrap() error { return f.err }

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

// fetchBatch streams objects with the batch extension. It returns the
// objects it could not get (for the v0 fallback, which gives a precise
// per-object error), or an error that ends the pull.
func (p *puller) fetchBatch(need []int) ([]int, error) {
	tries := map[int]int{}
	var triesMu sync.Mutex
	pending := need
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
				errs[k] = p.batchOnce(chunk, tries, &triesMu)
			}()
		}
		wg.Wait()
		for k, err := range errs {
			if err == nil {
				continue
			}
			chunk := chunks[k]
			var se *StatusError
			if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
				// "object <hex> not in primary": fail that one object and
				// ask again without it.
				if i, ok := p.notInPrimary(se, chunk); ok {
					p.mu.Lock()
					p.fail(i, fmt.Errorf("object %s: %w", p.idx.hashes[i], se))
					p.mu.Unlock()
					stuck = -1 // progress: one object settled
					continue
				}
			}
			if errors.As(err, &se) && se.StatusCode/100 == 4 && se.StatusCode != http.StatusTooManyRequests {
				// The primary refuses the batch request itself: fall back
				// to plain GETs for everything still missing.
				if p.c.opts.Logger != nil {
					p.c.opts.Logger.Warn("batch request refused; falling back to object GETs", "error", err.Error())
				}
				return p.unfetched(pending), nil
			}
			if p.ctx.Err() != nil {
				return nil, fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
			}
			lastErr = err
			if p.c.opts.Logger != nil {
				p.c.opts.Logger.Warn("batch stream failed; re-requesting the rest", "error", err.Error())
			}
		}
		next := p.unfetched(pending)
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

// notInPrimary finds the hash a batch 404 names, if it is one of chunk.
func (p *puller) notInPrimary(se *StatusError, chunk []int) (int, bool) {
	body := se.Body
	for k := 0; k+64 <= len(body); k++ {
		h, err := repo.ParseHash(body[k : k+64])
		if err != nil {
			continue
		}
		for _, i := range chunk {
			if p.idx.hashes[i] == h {
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
	return p.objects
}

// unfetched filters idx positions to those neither stored nor failed for good.
func (p *puller) unfetched(idx []int) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, i := range idx {
		if p.idx.flags[i]&(flagFetched|flagLocal) == 0 && p.failures[i] == nil {
			out = append(out, i)
		}
	}
	return out
}

// batchOnce requests one chunk and stores every frame that verifies. A
// frame that does not verify counts as a failed try for that object (it is
// re-requested until objectAttempts); the stream itself stays usable since
// the framing is intact.
func (p *puller) batchOnce(chunk []int, tries map[int]int, triesMu *sync.Mutex) error {
	req := BatchRequest{Hashes: make([]string, len(chunk))}
	for k, i := range chunk {
		req.Hashes[k] = p.idx.hashes[i].String()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	url := p.tr.base + BasePath + "/objects/batch"
	resp, err := p.tr.do(p.ctx, http.MethodPost, BasePath+"/objects/batch", body, "application/json")
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) {
			err = &fatalFetch{err}
		}
		return err
	}
	defer drain(resp)
	fr := newFrameReader(resp.Body, maxObjectBytes)
	for {
		h, kind, payload, err := fr.next()
		if errors.Is(err, io.EOF) {
			// The count trailer is only sent after a complete stream; an
			// aborted one may end at a frame boundary.
			if resp.Trailer.Get(ObjectCountTrailer) == "" {
				return fmt.Errorf("POST %s: stream ended without its %s trailer (aborted by the primary)", url, ObjectCountTrailer)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("POST %s: %w", url, err)
		}
		i, ok := p.idx.find(h)
		if !ok {
			return fmt.Errorf("POST %s: the primary sent object %s, which was not requested", url, h.Short())
		}
		if err := p.accept(i, kind, payload, false); err != nil {
			if !errors.Is(err, repo.ErrHashMismatch) {
				return &fatalFetch{err}
			}
			triesMu.Lock()
			tries[i]++
			n := tries[i]
			triesMu.Unlock()
			if n >= objectAttempts {
				p.mu.Lock()
				p.fail(i, fmt.Errorf("%w (from %s, %d tries)", err, url, n))
				p.mu.Unlock()
			}
		}
	}
}

// fetchV0 GETs objects concurrently over keep-alive connections. Each
// object that fails verification or breaks mid-body is retried from the
// network a few times and never stored; an unreachable primary ends the
// transfer.
func (p *puller) fetchV0(need []int) error {
	if len(need) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(p.ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	var fatalOnce sync.Once
	var fatal error
	workers := min(p.c.opts.Concurrency, len(need))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for i := range work {
				if err := p.fetchOne(ctx, i, &buf); err != nil {
					fatalOnce.Do(func() { fatal = err; cancel(err) })
				}
			}
		}()
	}
feed:
	for _, i := range need {
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
// why.
func (p *puller) fetchOne(ctx context.Context, i int, buf *bytes.Buffer) error {
	var last error
	for try := 1; try <= objectAttempts; try++ {
		// Back off before each retry, but not past the end of ctx.
		if try > 1 && !sleepCtx(ctx, backoff(p.c.opts.RetryMinDelay, p.c.opts.RetryMaxDelay, try-2, nil)) {
			return nil
		}
		if isDone(ctx) {
			return nil
		}
		kind, err := p.getObject(ctx, p.idx.hashes[i], buf)
		if err == nil {
			err = p.accept(i, kind, buf.Bytes(), true)
			if err == nil {
				return nil
			}
			if !errors.Is(err, repo.ErrHashMismatch) {
				return err // the local store failed
			}
		}
		last = err
		if !isObjectLevel(err) {
			return err
		}
		var se *StatusError
		if errors.As(err, &se) {
			break // a 4xx for this object will not change
		}
	}
	p.mu.Lock()
	p.fail(i, last)
	p.mu.Unlock()
	return nil
}

// getObject reads one object body into buf and returns its claimed kind.
func (p *puller) getObject(ctx context.Context, h repo.Hash, buf *bytes.Buffer) (repo.Kind, error) {
	path := BasePath + "/objects/" + h.String()
	resp, err := p.tr.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) {
			err = &fatalFetch{err}
		}
		return "", err
	}
	defer drain(resp)
	url := p.tr.base + path
	kind, err := repo.ParseKind(resp.Header.Get(ObjectKindHeader))
	if err != nil {
		return "", fmt.Errorf("GET %s: %s header: %w", url, ObjectKindHeader, err)
	}
	if resp.ContentLength > maxObjectBytes {
		return "", fmt.Errorf("GET %s: object of %d bytes exceeds the %d MiB limit", url, resp.ContentLength, maxObjectBytes>>20)
	}
	buf.Reset()
	if _, err := buf.ReadFrom(&limitedReader{r: resp.Body, n: maxObjectBytes}); err != nil {
		if errors.Is(err, errTooLarge) {
			return "", fmt.Errorf("GET %s: object exceeds the %d MiB limit", url, maxObjectBytes>>20)
		}
		return "", fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	return kind, nil
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

// seed is an object a pack stream left out: linked by an object that
// arrived, neither received nor local. The rounds fetch it.
type seed struct {
	h     repo.Hash
	want  uint8 // kindCodes of the link; 0: any
	owner int32 // index in puller.targets of the target that reached it; -1: none
}

// pend is a pending link packed into 32 bits, so the pending set of a
// million-object pull is a map of 36-byte slots: the kind code in the low
// 3 bits, owner+1 above.
type pend uint32

func mkPend(want uint8, owner int32) pend { return pend(uint32(owner+1)<<3 | uint32(want&7)) }
func (e pend) want() uint8                { return uint8(e & 7) }
func (e pend) owner() int32               { return int32(e>>3) - 1 }

// packState is what a pull over the pack extension keeps while streams
// arrive. It never holds the list of objects received: a stream sends each
// object after an object linking it, so what must still arrive is exactly
// the set of links not yet satisfied (pending). Links the stream does not
// satisfy are checked against the store when it ends; the primary says they
// are in the closure of our known tips (complete by invariant) or arrived
// earlier in the stream (shared objects).
type packState struct {
	pending map[repo.Hash]pend
	// bases maps a tree not yet received to the known tree it replaces
	// (same place, in the tree of a known parent commit): children equal
	// to the known tree's are in a known closure and need no lookup.
	// Without it, one changed record in a flat zone would put every name
	// of the zone in pending.
	bases   map[repo.Hash]repo.Hash
	history *knownHistory
	recheck []seed // stored objects whose links could not be followed
	corrupt int
}

// packAll streams the closures of roots with the pack extension, one
// request per chunk of roots, and returns the frontier: the objects the
// streams should have delivered and did not. A 404 is narrowed to the
// roots that caused it, as for walk. A chunk the primary refuses (another
// 4xx) is walked instead; its hashes come back in walked for the rounds to
// fetch.
func (p *puller) packAll(roots []repo.Hash, known []string, knownSet map[repo.Hash]bool) (frontier []seed, walked []repo.Hash, err error) {
	ps := &packState{pending: map[repo.Hash]pend{}, bases: map[repo.Hash]repo.Hash{}}
	ps.history = newKnownHistory(p.c.Local, knownSet)
	p.pack = ps
	defer func() { p.pack = nil }()
	batch, err := p.c.Local.NewBatch()
	if err != nil {
		return nil, nil, fmt.Errorf("pull: %w", err)
	}
	p.batch = batch
	flushed := false
	defer func() {
		if !flushed {
			p.batch.Cancel()
		}
	}()
	var refused []repo.Hash
	var chunkRoots func(chunk []repo.Hash) error
	chunkRoots = func(chunk []repo.Hash) error {
		for _, r := range chunk {
			if _, ok := ps.pending[r]; !ok {
				ps.pending[r] = mkPend(0, p.ownerOf(r))
			}
		}
		err := p.packOnce(chunk, known)
		var se *StatusError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
			for _, r := range chunk {
				delete(ps.pending, r)
			}
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
			if p.c.opts.Logger != nil {
				p.c.opts.Logger.Warn("pack request refused; walking instead", "error", err.Error())
			}
			for _, r := range chunk {
				delete(ps.pending, r)
			}
			refused = append(refused, chunk...)
			return nil
		}
		return err
	}
	for start := 0; start < len(roots); start += walkRootsPerRequest {
		if err := chunkRoots(roots[start:min(len(roots), start+walkRootsPerRequest)]); err != nil {
			return nil, nil, err
		}
	}
	flushed = true
	if err := p.batch.Flush(); err != nil {
		return nil, nil, fmt.Errorf("pull: %w", err)
	}
	p.batch = nil
	if len(refused) > 0 {
		if walked, err = p.walkAll(refused, known); err != nil {
			return nil, nil, err
		}
	}
	// Links no stream satisfied must be local; the rest is the frontier.
	err = p.c.Local.View(func(r repo.Reader) error {
		n := 0
		for h, e := range ps.pending {
			if n++; n%4096 == 0 && p.ctx.Err() != nil {
				return p.ctx.Err()
			}
			has, err := r.Has(h)
			if err != nil {
				return err
			}
			if !has {
				frontier = append(frontier, seed{h: h, want: e.want(), owner: e.owner()})
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pull: verifying the closure: %w", err)
	}
	frontier = append(frontier, ps.recheck...)
	if len(frontier) > 0 && p.c.opts.Logger != nil {
		p.c.opts.Logger.Warn("pack streams left objects out; fetching them", "objects", len(frontier), "corrupt", ps.corrupt)
	}
	return frontier, walked, nil
}

// ownerOf is the index of the first target moving to h (-1: none).
func (p *puller) ownerOf(h repo.Hash) int32 {
	for k, it := range p.targets {
		if it.needs && it.new == h {
			return int32(k)
		}
	}
	return -1
}

// packOnce sends one pack request and stores every frame that verifies. A
// status error (before any frame) is returned as is. A stream that breaks
// (reset, truncation, a missing count trailer, a malformed frame) is not
// an error: what it did not deliver stays pending and is fetched from the
// frontier. Only a failing local store or a canceled pull end the transfer.
func (p *puller) packOnce(roots []repo.Hash, known []string) error {
	body, err := walkBody(roots, known)
	if err != nil {
		return err
	}
	url := p.tr.base + PackPath
	resp, err := p.tr.do(p.ctx, http.MethodPost, PackPath, body, "application/json")
	if err != nil {
		return err
	}
	defer drain(resp)
	streamErr := func(err error) error {
		if p.ctx.Err() != nil {
			return fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
		}
		if p.c.opts.Logger != nil {
			p.c.opts.Logger.Warn("pack stream broke; fetching the rest separately", "error", err.Error())
		}
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != ObjectStreamContentType {
		return streamErr(fmt.Errorf("POST %s: content type %q, want %s", url, clipStr(ct), ObjectStreamContentType))
	}
	fr := newFrameReader(resp.Body, maxObjectBytes)
	for {
		h, kind, payload, err := fr.next()
		if errors.Is(err, io.EOF) {
			// The count trailer is only sent after a complete stream; an
			// aborted one may end at a frame boundary.
			if resp.Trailer.Get(ObjectCountTrailer) == "" {
				return streamErr(fmt.Errorf("POST %s: stream ended without its %s trailer (aborted by the primary)", url, ObjectCountTrailer))
			}
			return nil
		}
		if err != nil {
			return streamErr(fmt.Errorf("POST %s: %w", url, err))
		}
		if err := p.receive(h, kind, payload); err != nil {
			return &fatalFetch{err}
		}
	}
}

// receive verifies and stores one object of a pack stream and records its
// links. A frame that does not verify is dropped and its object stays
// pending (fetched again later); only a store failure is an error.
func (p *puller) receive(h repo.Hash, kind repo.Kind, payload []byte) error {
	ps := p.pack
	e, linked := ps.pending[h]
	owner := int32(-1)
	if linked {
		owner = e.owner()
		if w := e.want(); w != 0 && w != kindCodes[kind] {
			// Its parent says it is something else: leave it pending, so
			// the rounds fetch it and fail the targets that reach it.
			ps.corrupt++
			return nil
		}
	}
	// Batch.Put verifies hash and kind: the store's only way in.
	if err := p.put(h, kind, payload); err != nil {
		if errors.Is(err, repo.ErrHashMismatch) {
			ps.corrupt++
			return nil
		}
		return fmt.Errorf("object %s: %w", h, err)
	}
	delete(ps.pending, h)
	p.objects++
	p.bytes += int64(len(payload))
	if owner >= 0 {
		p.targets[owner].res.Objects++
		p.targets[owner].res.Bytes += int64(len(payload))
	}
	var err error
	switch kind {
	case repo.KindTree:
		err = p.linkTree(h, payload, owner)
	case repo.KindCommit:
		err = p.linkCommit(payload, owner)
	default:
		var links []repo.Link
		if links, err = repo.Links(kind, payload); err == nil {
			for _, l := range links {
				p.link(l.Hash, kindCodes[l.Kind], owner)
			}
		}
	}
	if err != nil {
		// Stored (it verified), but its links are unknown: the rounds
		// read it back, and fail the targets that reach it.
		ps.recheck = append(ps.recheck, seed{h: h, want: kindCodes[kind], owner: owner})
	}
	p.total = p.objects + len(ps.pending)
	p.progress(false)
	return nil
}

// link records that an arrived object links to h. It reports whether h
// became pending (it was not already).
func (p *puller) link(h repo.Hash, want uint8, owner int32) bool {
	if _, ok := p.pack.pending[h]; ok {
		return false
	}
	p.pack.pending[h] = mkPend(want, owner)
	return true
}

// linkCommit records a commit's tree and parents. When a parent is in the
// history of a known tip, its tree is the base the new tree is compared
// with; an unchanged tree needs nothing at all.
func (p *puller) linkCommit(payload []byte, owner int32) error {
	c, err := repo.DecodeCommit(payload)
	if err != nil {
		return err
	}
	ps := p.pack
	tree := c.Tree
	var base repo.Hash
	for _, parent := range c.Parents {
		p.link(parent, kindCodes[repo.KindCommit], owner)
		if !base.IsZero() || !ps.history.has(parent) {
			continue
		}
		if _, pp, err := p.c.Local.Get(parent); err == nil {
			if pc, err := repo.DecodeCommit(pp); err == nil {
				base = pc.Tree
			}
		}
	}
	if base == tree {
		return nil // the tree of a known commit: its closure is local
	}
	if p.link(tree, kindCodes[repo.KindTree], owner) && !base.IsZero() {
		ps.bases[tree] = base
	}
	return nil
}

// linkTree records a tree's entries, skipping those equal to the entry at
// the same place in its base (a known tree, in the history of a known tip,
// whose closure is therefore local). Once an entry matches, skipIdentical
// (walk.go) jumps over the run of entries that follow byte for byte
// identically in both trees: they are the base's own entries, so vouched
// for like it. Every entry of the new tree is still parsed and checked by
// it.next, skipped or not, so a corrupt tree fails as before.
func (p *puller) linkTree(h repo.Hash, payload []byte, owner int32) error {
	ps := p.pack
	var kt treeIter
	kok := false
	if base, ok := ps.bases[h]; ok {
		delete(ps.bases, h)
		if _, kp, err := p.c.Local.Get(base); err == nil {
			if it, err := newTreeIter(base, kp); err == nil {
				kt, kok = it, it.next()
			}
		}
	}
	it, err := newTreeIter(h, payload)
	if err != nil {
		return err
	}
	for it.next() {
		for kok && entryCmp(kt.kind, kt.name, it.kind, it.name) < 0 {
			kok = kt.next()
		}
		same := kok && kt.kind == it.kind && bytes.Equal(kt.name, it.name)
		if same && bytes.Equal(kt.hash, it.hash) {
			// Vouched for by the known tree, and so is the identical run
			// that follows; both stop on its last entry.
			skipIdentical(&it, &kt)
			continue
		}
		want := kindCodes[repo.KindBlob]
		if it.kind == byte(repo.EntrySubtree) {
			want = kindCodes[repo.KindTree]
		}
		child := repo.Hash(it.hash)
		if p.link(child, want, owner) && same && it.kind == byte(repo.EntrySubtree) {
			ps.bases[child] = repo.Hash(kt.hash)
		}
	}
	return it.err
}
