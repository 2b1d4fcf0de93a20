package server

import (
	"slices"
	"sync"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// A pack response sends what the walk emits in the walk's order, except
// blobs, which it holds back in batches of packBlobBatch and sends each
// batch sorted: a full pull of a flat zone emits one blob per name, and in
// key order they are cheaper to read. (A blob links nothing and comes after
// the tree that links it whenever it is sent, so delaying it keeps the
// stream's order.) That order is the wire's (clients and tests pin it),
// and it leaves the blobs of one batch spread over the whole store: a
// 100k-record flat zone's 16,384 blobs are 12 keys apart among its
// 200,000, so reading a batch costs about a full sweep of the store's keys
// (a cursor step each), and a full pack made six.
//
// packAhead reads ahead instead: it queues what the walk emits after a
// closed batch (copies of the trees' payloads, lent by the walk) until
// packAheadBlobs blobs wait in closed batches, then reads the blobs of all
// of them in one ascending sweep, and only then frames the queue in the
// order it was emitted. The answer is byte for byte the same; the reads
// are fewer and the memory bounded (packAheadBytes of payload copies, the
// same again of blobs read ahead, and the queued hashes). That zone's six
// batches take one sweep (serve peaked 10 MiB higher); in a store of two
// million objects eight batches' blobs are 15 keys apart, where stepping
// still beats most point lookups. Measured serve CPU per full pack, 100k
// and 1M records: read ahead over 3 batches with 4 MiB budgets, 0.33 and
// 6.7 s; over 8 batches with 12 MiB, 0.28 and 5.8 s.
//
// But a client waits while the primary sweeps: nothing after the first
// closed batch is sent until the sweep is done, and a 100k zone's six
// batches are one sweep, so the client sat idle for it and then took the
// whole stream at once. Interleaved, a 100k pull with 8 batches read ahead
// took 1.29 s (CLI, median of 7) instead of 1.13 s without the read-ahead,
// and in process 1.44-1.69 s instead of 1.07-1.21 s, though serve spent
// 0.38-0.44 s of CPU instead of 0.70. So the sweep covers one batch (the
// batch is read in key order, and framed, before the walk goes on), which
// measured as fast as without read-ahead; reading ahead across batches
// pays only with the sweep overlapping the framing, which this does not do.
// Anything not read ahead (a blob over packAheadMaxObject, one beyond the
// budget, one that is absent, damaged or not a blob) is read and framed at
// its turn as before, so it fails with the same error at the same point of
// the stream.

// The read-ahead's bounds (variables so tests can make them small).
var (
	// packBlobBatch is how many blob hashes a pack response holds back to
	// send them in key order. It decides the order of the answer.
	packBlobBatch = 16384
	// packAheadBlobs is how many blobs of closed batches are read in one
	// sweep (at most: a budget may run out first).
	packAheadBlobs = 16384
	// packAheadBytes bounds the payloads queued, and again the blobs read
	// ahead.
	packAheadBytes = 4 << 20
	// packAheadMaxObject is the largest payload copied into either: a
	// larger one is framed (or read) at its turn.
	packAheadMaxObject = 64 << 10
)

// packAhead frames one pack response's objects (see above). It serves one
// request.
type packAhead struct {
	rd    repo.Reader // the request's cached reader
	frame func(repo.Hash, repo.Kind, []byte) error
	pf    *peekFramer

	open   []repo.Hash // blobs emitted since the last batch closed
	events []packEvent // what is queued, in the walk's order
	arena  []byte      // queued payloads
	blobs  []repo.Hash // the queued batches, each sorted
	vals   []byte      // blobs read ahead
	valOff []int32     // per blobs entry: where in vals; -1: not read ahead
	valLen []int32
	cur    int                           // the blobs entry being read ahead
	keepFn func(repo.Kind, []byte) error // keep, made once
	heads  []int                         // readAhead's merge state
	ends   []int
	err    error // the first failure: the stream stops there
}

type packEvent struct {
	h      repo.Hash
	kind   repo.Kind
	op     uint8
	off, n int
}

// Kinds of queued events.
const (
	evPayload uint8 = iota // a payload, copied at arena[off:off+n]
	evSend                 // an object the walk emitted without payload
	evBatch                // a closed batch, blobs[off:off+n]
)

// packAheads keeps packAheads' buffers (a few MiB) from one response to
// the next.
var packAheads sync.Pool

// newPackAhead returns a packAhead for one response; release it when the
// response is done with it.
func newPackAhead(rd repo.Reader, frame func(repo.Hash, repo.Kind, []byte) error) *packAhead {
	p, _ := packAheads.Get().(*packAhead)
	if p == nil {
		p = &packAhead{}
	}
	p.rd, p.frame, p.pf, p.err = rd, frame, &peekFramer{rd: rd, frame: frame}, nil
	return p
}

// release hands p's buffers to the next response; p is not used again.
func (p *packAhead) release() {
	*p = packAhead{
		open: p.open[:0], events: p.events[:0], arena: p.arena[:0], blobs: p.blobs[:0],
		vals: p.vals[:0], valOff: p.valOff[:0], valLen: p.valLen[:0], heads: p.heads[:0], ends: p.ends[:0],
	}
	packAheads.Put(p)
}

// emit is the walk's EmitFunc.
func (p *packAhead) emit(h repo.Hash, kind repo.Kind, payload []byte) error {
	switch {
	case payload != nil:
		if len(p.events) == 0 {
			return p.frame(h, kind, payload)
		}
		if len(payload) > packAheadMaxObject || len(p.arena)+len(payload) > packAheadBytes {
			if err := p.flush(); err != nil {
				return err
			}
			return p.frame(h, kind, payload)
		}
		off := len(p.arena)
		p.arena = append(p.arena, payload...)
		p.events = append(p.events, packEvent{h: h, kind: kind, op: evPayload, off: off, n: len(payload)})
		return nil
	case kind == repo.KindBlob:
		p.open = append(p.open, h)
		if len(p.open) < packBlobBatch {
			return nil
		}
		return p.closeBatch()
	}
	if len(p.events) == 0 {
		return p.pf.send(h, kind)
	}
	p.events = append(p.events, packEvent{h: h, kind: kind, op: evSend})
	return nil
}

// closeBatch queues the open batch, sorted, and sends the queue once
// enough blobs wait in it.
func (p *packAhead) closeBatch() error {
	if len(p.open) == 0 {
		return nil
	}
	repo.SortByHash(p.open, func(h *repo.Hash) *repo.Hash { return h })
	off := len(p.blobs)
	p.blobs = append(p.blobs, p.open...)
	p.open = p.open[:0]
	p.events = append(p.events, packEvent{op: evBatch, off: off, n: len(p.blobs) - off})
	if len(p.blobs) >= packAheadBlobs {
		return p.flush()
	}
	return nil
}

// finish sends everything, the open batch last: the walk is complete.
func (p *packAhead) finish() error {
	if p.err != nil {
		return p.err
	}
	if err := p.closeBatch(); err != nil {
		return err
	}
	return p.flush()
}

// abandon sends what was queued before the walk failed with err (the
// open batch was not complete, and was never sent), and returns the error
// the stream stops with: the first in the stream's order.
func (p *packAhead) abandon(err error) error {
	if ferr := p.flush(); ferr != nil {
		return ferr
	}
	return err
}

// flush reads the queued batches' blobs ahead, then frames the queue.
func (p *packAhead) flush() error {
	if p.err != nil {
		return p.err
	}
	p.readAhead()
	for _, e := range p.events {
		var err error
		switch e.op {
		case evPayload:
			err = p.frame(e.h, e.kind, p.arena[e.off:e.off+e.n])
		case evSend:
			err = p.pf.send(e.h, e.kind)
		case evBatch:
			for i := e.off; i < e.off+e.n && err == nil; i++ {
				if o := p.valOff[i]; o >= 0 {
					err = p.frame(p.blobs[i], repo.KindBlob, p.vals[o:o+p.valLen[i]])
				} else {
					err = p.pf.send(p.blobs[i], repo.KindBlob)
				}
			}
		}
		if err != nil {
			p.err = err
			return err
		}
	}
	p.events, p.arena, p.blobs, p.vals = p.events[:0], p.arena[:0], p.blobs[:0], p.vals[:0]
	return nil
}

// readAhead reads the queued batches' blobs in one ascending sweep (a
// merge of the sorted batches) into vals, while the budget lasts.
func (p *packAhead) readAhead() {
	n := len(p.blobs)
	p.valOff = slices.Grow(p.valOff[:0], n)[:n]
	p.valLen = slices.Grow(p.valLen[:0], n)[:n]
	for i := range p.valOff {
		p.valOff[i] = -1
	}
	p.heads, p.ends = p.heads[:0], p.ends[:0]
	for _, e := range p.events {
		if e.op == evBatch {
			p.heads = append(p.heads, e.off)
			p.ends = append(p.ends, e.off+e.n)
		}
	}
	if p.keepFn == nil {
		p.keepFn = p.keep
	}
	for {
		best := -1
		for j, i := range p.heads {
			if i < p.ends[j] && (best < 0 || repo.CompareHashes(p.blobs[i], p.blobs[p.heads[best]]) < 0) {
				best = j
			}
		}
		if best < 0 || len(p.vals) >= packAheadBytes {
			return
		}
		p.cur = p.heads[best]
		p.heads[best]++
		// A read that fails is not an error yet: the blob is read again
		// at its turn in the stream, and fails there as it always did.
		_ = repo.Peek(p.rd, p.blobs[p.cur], p.keepFn)
	}
}

// keep copies a blob read ahead; anything else is left to its turn.
func (p *packAhead) keep(kind repo.Kind, payload []byte) error {
	if kind != repo.KindBlob || len(payload) > packAheadMaxObject || len(p.vals)+len(payload) > packAheadBytes {
		return nil
	}
	p.valOff[p.cur] = int32(len(p.vals))
	p.valLen[p.cur] = int32(len(payload))
	p.vals = append(p.vals, payload...)
	return nil
}
