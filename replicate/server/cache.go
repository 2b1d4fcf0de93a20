package server

import (
	"bytes"
	"container/list"
	"sync"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// bigObjectCache keeps recently read large objects in memory. Objects are
// immutable, so an entry can never be stale, whatever snapshot it came
// from. It exists for flat zones: there the apex tree holds one entry per
// name, and every secondary pulling the same change makes the walk read
// the same two apex trees; from memory that costs a byte comparison
// instead of two large store reads. Trees of 1 MiB and more (from ~26,000
// names) the store lends in place, as cheaply as the cache would: a walk
// does not copy those in (cachedReader.lookup).
type bigObjectCache struct {
	mu       sync.Mutex
	max      int64 // total payload bytes kept
	minSize  int   // smaller objects are cheap to read from the store
	used     int64
	lru      *list.List // front = most recent; values are *cacheEntry
	byHash   map[repo.Hash]*list.Element
	hits     int64
	misses   int64
	disabled bool
}

type cacheEntry struct {
	hash    repo.Hash
	kind    repo.Kind
	payload []byte
}

func newBigObjectCache(maxBytes int64, minSize int) *bigObjectCache {
	return &bigObjectCache{
		max: maxBytes, minSize: minSize, disabled: maxBytes <= 0,
		lru: list.New(), byHash: make(map[repo.Hash]*list.Element),
	}
}

func (c *bigObjectCache) get(h repo.Hash) (repo.Kind, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byHash[h]; ok {
		c.lru.MoveToFront(el)
		c.hits++
		e := el.Value.(*cacheEntry)
		return e.kind, e.payload, true
	}
	c.misses++
	return "", nil, false
}

// wants reports whether a payload of n bytes is one the cache keeps.
func (c *bigObjectCache) wants(n int) bool {
	return !c.disabled && n >= c.minSize && int64(n) <= c.max/2
}

func (c *bigObjectCache) add(h repo.Hash, kind repo.Kind, payload []byte) {
	if !c.wants(len(payload)) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byHash[h]; ok {
		return
	}
	c.byHash[h] = c.lru.PushFront(&cacheEntry{hash: h, kind: kind, payload: payload})
	c.used += int64(len(payload))
	for c.used > c.max {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.byHash, e.hash)
		c.used -= int64(len(e.payload))
	}
}

// cachedReader reads through the cache. Payloads it returns are shared and
// must not be modified (the walk and the stream writers only read them).
// It serves one request (one goroutine).
type cachedReader struct {
	repo.Reader
	c *bigObjectCache
	// look is Peek's callback, made once: a closure per Peek would be
	// an allocation per object a pack response sends. calls are the
	// Peeks it serves, innermost last (a walk reads a tree's bases while
	// it holds the tree).
	look  func(repo.Kind, []byte) error
	calls []peekCall
}

type peekCall struct {
	h  repo.Hash
	fn func(repo.Kind, []byte) error
}

func (r *cachedReader) Get(h repo.Hash) (repo.Kind, []byte, error) {
	if kind, p, ok := r.c.get(h); ok {
		return kind, p, nil
	}
	kind, p, err := r.Reader.Get(h)
	if err == nil {
		r.c.add(h, kind, p)
	}
	return kind, p, err
}

// Peek lends an object's payload (see repo.Peek): from the cache, or in
// place from the store, copying only one the cache keeps, and only once fn
// is done with it (see lookup).
func (r *cachedReader) Peek(h repo.Hash, fn func(kind repo.Kind, payload []byte) error) error {
	if kind, p, ok := r.c.get(h); ok {
		return fn(kind, p)
	}
	if r.look == nil {
		r.look = r.lookup
	}
	r.calls = append(r.calls, peekCall{h: h, fn: fn})
	defer func() { r.calls = r.calls[:len(r.calls)-1] }()
	return repo.Peek(r.Reader, h, r.look)
}

// lookup is the callback of the innermost Peek. The copy for the cache is
// made after fn, while p is still lent: in a pack response fn frames the
// object and diffs it with its base, so copying first would delay the
// stream's largest frame by the copy (an allocation of fresh memory and a
// pass over it) and the client would wait for it; afterwards it overlaps
// the client's receive.
//
// A payload the store lends in place from its mapped value log
// (repo.LentInPlace: a flat zone's apex tree from 26,000 names or so) is
// not copied at all: reading it there again costs no more than reading it
// from the cache (BenchmarkWalk, 100,000 names: 1.35 ms from the store,
// 1.46-1.7 ms from the cache), while the copy took ~1.6 ms and 4 MB of
// fresh memory, on the walk's path, for every new tree.
func (r *cachedReader) lookup(kind repo.Kind, p []byte) error {
	c := r.calls[len(r.calls)-1]
	err := c.fn(kind, p)
	if r.c.wants(len(p)) && !repo.LentInPlace(kind, len(p)) {
		r.c.add(c.h, kind, bytes.Clone(p))
	}
	return err
}
