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
