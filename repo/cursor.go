package repo

import (
	"bytes"
	"encoding/binary"
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// Object reads inside a read-only handle's View (serve's snapshots; a
// writer's View has no cursors, see View) that come in ascending key order
// (a walk reads a tree's subtrees in hash order, a pack response its blobs
// in sorted batches) are served by stepping Badger iterators forward
// instead of one point lookup each. A point lookup (txn.Get) visits every level of the
// LSM tree (bloom filter, block index search, block fetch and checksum,
// about 20 allocations): 2-5 µs. An iterator step to the next key costs
// about 0.2 µs. A full pull of a 100,000-record flat zone reads 200,000
// objects this way.
//
// Keys are "o/" + a SHA-256 hash, spread evenly over the key space, so the
// number of keys between two hashes is estimated from the difference of
// their first 8 bytes and the store's key count: a read steps a cursor
// only when the key it wants is expected within maxCursorGap keys ahead,
// and otherwise is a point lookup. What an iterator finds is exact (it
// sees every key of the transaction's snapshot in order): a key it steps
// over is absent. Reads that are not in ascending order cost a point
// lookup as before, plus a comparison.

// maxCursorGap is how many keys ahead a cursor steps to rather than a
// point lookup or a seek (a step costs about 0.25 µs, a lookup 4 µs, an
// iterator seek 5 µs; past this the lookup wins, and its cost does not
// grow with the distance). Measured on a 100k-record full pack: 16, 24
// and 32 cost 0.67, 0.64 and 0.63 s of serve CPU.
const maxCursorGap = 24

// seqCursors is the cursor state of one View. Two cursors follow two
// interleaved ascending sequences (a walk's trees and a pack's blob
// batches).
type seqCursors struct {
	r    *Repo
	txn  *badger.Txn
	keys float64 // estimated keys in the store; < 0: none, cursors off
	// prev is the hash prefix of the previous lookup: a lookup just after
	// it, with no cursor near, starts a cursor there.
	prev    uint64
	hasPrev bool
	curs    [2]seqCursor
	clock   int
	// last is the cursor that served the previous lookup (nil: a point
	// lookup did); lastStepped: by stepping.
	last        *seqCursor
	lastStepped bool
	avgGap      float64 // see trackGap
	// lending counts Peeks whose payload is lent to the caller: reads
	// made meanwhile never move these cursors (the payload may be in one
	// of their buffers). Reads made while exactly one payload is lent go
	// to nested, a cursor set of their own; deeper ones are point lookups.
	// A pack response reads its blobs inside the walk's Peek of a tree
	// (a batch fills while that tree's entries are diffed): sorted sweeps
	// a few keys apart, which a cursor steps through for a fraction of
	// what point lookups cost.
	lending int
	nested  *seqCursors
	key     [34]byte
}

type seqCursor struct {
	it   *badger.Iterator
	used int // clock of the last use, to replace the least recent
}

func newSeqCursors(r *Repo, txn *badger.Txn) *seqCursors {
	return &seqCursors{r: r, txn: txn}
}

// close closes the iterators (before the transaction ends).
func (s *seqCursors) close() {
	if s.nested != nil {
		s.nested.close()
	}
	for i := range s.curs {
		if s.curs[i].it != nil {
			s.curs[i].it.Close()
			s.curs[i].it = nil
		}
	}
}

func hashPrefix(h Hash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

// expected is the estimated number of keys between hash prefixes from and
// to (from <= to).
func (s *seqCursors) expected(from, to uint64) float64 {
	return float64(to-from) / (1 << 64) * s.keys
}

// near reports whether a lookup of to right after from is expected within
// maxCursorGap keys.
func (s *seqCursors) near(from, to uint64) bool {
	if s.keys == 0 {
		s.keys = s.r.tableKeys()
		if s.keys == 0 {
			s.keys = -1 // nothing in tables: no estimate, no cursors
		}
	}
	return s.keys > 0 && from <= to && s.expected(from, to) <= maxCursorGap
}

// trackGap follows the expected gap between successive lookups (a moving
// average): a sparse sequence (a pack's blob batches in a store of 2M
// objects, 120 keys apart) has some lookups near each other by chance, and
// starting or re-seeking a cursor for those (an iterator seek costs more
// than a lookup) would only cost more.
func (s *seqCursors) trackGap(prev, p uint64) {
	g := maxCursorGap * 8.0 // descending: as good as far
	if s.near(prev, p) || prev <= p && s.keys > 0 {
		g = min(s.expected(prev, p), g)
	}
	s.avgGap = s.avgGap*0.75 + g*0.25
}

// dense reports whether recent lookups came near each other.
func (s *seqCursors) dense() bool { return s.avgGap <= maxCursorGap }

// find looks h up: the item (valid until the next find or the end of the
// transaction), or nil when absent. The caller runs it under the read
// guard.
//
// The cursor that served the previous lookup follows its sequence: it
// steps to h when h is near, and seeks to h (a lookup's cost) when h is
// further ahead but the sequence was dense so far. Otherwise another
// cursor behind h and near it steps; otherwise a lookup just after the
// previous one starts a cursor (the least recently used) at h; otherwise
// h is a point lookup.
func (s *seqCursors) find(h Hash) (*badger.Item, error) {
	// Reads under a lent payload leave this set's sequence alone.
	switch {
	case s.lending == 1:
		if s.nested == nil {
			s.nested = newSeqCursors(s.r, s.txn)
		}
		return s.nested.find(h)
	case s.lending > 1:
		return s.get(h)
	}
	s.clock++
	p := hashPrefix(h)
	prev, hadPrev := s.prev, s.hasPrev
	s.prev, s.hasPrev = p, true
	if hadPrev {
		s.trackGap(prev, p)
	}
	last, lastStepped := s.last, s.lastStepped
	s.last, s.lastStepped = nil, false
	key := s.key[:]
	copy(key, objPrefix)
	copy(key[len(objPrefix):], h[:])

	if last != nil {
		if from, ok := last.behind(key); ok {
			if s.near(from, p) {
				if item, done := s.step(last, from, p, key); done {
					return item, nil
				}
			} else if lastStepped && s.dense() {
				return s.seek(last, key), nil
			}
		}
	}
	for i := range s.curs {
		c := &s.curs[i]
		if c == last {
			continue
		}
		if from, ok := c.behind(key); ok && s.near(from, p) {
			if item, done := s.step(c, from, p, key); done {
				return item, nil
			}
		}
	}
	if hadPrev && s.near(prev, p) && s.dense() {
		// An ascending sequence no cursor follows: start one at h.
		c := &s.curs[0]
		if s.curs[1].used < c.used {
			c = &s.curs[1]
		}
		if c.it == nil {
			// No value prefetching: it reads values in goroutines of
			// Badger's, where a damaged file would crash the process.
			c.it = s.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(objPrefix)})
		}
		return s.seek(c, key), nil
	}
	return s.get(h)
}

// behind reports whether c is at a key before key, and that key's hash
// prefix.
func (c *seqCursor) behind(key []byte) (uint64, bool) {
	if c.it == nil || !c.it.Valid() {
		return 0, false
	}
	k := c.it.Item().Key()
	if len(k) < len(objPrefix)+8 || bytes.Compare(k, key) >= 0 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(objPrefix):]), true
}

// step moves c forward to key (hash prefix p, c at from). done is false
// when it gave up after more steps than the gap makes likely (c is then
// further along, still before key).
func (s *seqCursors) step(c *seqCursor, from, p uint64, key []byte) (item *badger.Item, done bool) {
	c.used = s.clock
	s.last, s.lastStepped = c, true
	// Rarely more than a few times the expected gap: keys are hashes.
	limit := int(4*s.expected(from, p)) + 16
	for i := 0; i < limit; i++ {
		c.it.Next()
		if !c.it.Valid() {
			return nil, true // no key after the cursor: h is absent
		}
		switch cmp := bytes.Compare(c.it.Item().Key(), key); {
		case cmp == 0:
			return c.it.Item(), true
		case cmp > 0:
			return nil, true // stepped over where h would be
		}
	}
	s.last, s.lastStepped = nil, false
	return nil, false
}

// seek moves c to key; the item there, or nil when key is absent.
func (s *seqCursors) seek(c *seqCursor, key []byte) *badger.Item {
	c.used = s.clock
	s.last = c
	c.it.Seek(key)
	if c.it.Valid() && bytes.Equal(c.it.Item().Key(), key) {
		return c.it.Item()
	}
	return nil
}

// get is a point lookup (nil: absent). The item keeps its key: a new one,
// not s.key.
func (s *seqCursors) get(h Hash) (*badger.Item, error) {
	item, err := s.txn.Get(objKey(h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	return item, err
}

// tableKeys is the number of keys in the store's tables, counted once per
// handle: cursors run only in read-only handles, whose tables never change.
func (r *Repo) tableKeys() float64 {
	r.keysOnce.Do(func() {
		for _, t := range r.db.Tables() {
			r.keys += float64(t.KeyCount)
		}
	})
	return r.keys
}
