package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// ViewSorted is View for readers that read many objects in ascending hash
// order, several such sequences interleaved (the closure check of a pull
// reads the new trees in hash order and, between them, batches of blobs in
// hash order). A point lookup (View's Get) finds its key from scratch: the
// level's table, its block index, and the block, decoded once per lookup;
// reading 100,000s of objects that way decodes each block as often as it
// holds keys. ViewSorted's Reader keeps a few forward cursors over the
// object keys and answers a lookup by stepping the nearest cursor below the
// key forward, so a dense ascending sequence reads each block once. A
// lookup with no cursor below it seeks one there (the least recently used)
// for the lookups that may follow; one too far above every cursor is a
// point lookup. The answers are exactly View's.
func (r *Repo) ViewSorted(fn func(Reader) error) error {
	return r.db.View(func(txn *badger.Txn) error {
		v := &cursorView{tv: txnView{r, txn}}
		defer v.close()
		return fn(v)
	})
}

// Cursor tuning: how many cursors a view keeps (one per interleaved
// ascending sequence, and one spare), and how many keys a cursor steps over
// at most to reach a key; farther, a point lookup is cheaper. A step costs
// a fraction of a point lookup (which searches every level), so a sequence
// that reads one key in eight or more is read by stepping.
const (
	viewCursors     = 4
	cursorMaxSkip   = 8
	cursorKeyLength = 2 + len(Hash{})
)

type cursorView struct {
	tv      txnView
	cursors []*cursor
	tick    uint64
	// span is the key distance the cursors' steps covered, over steps
	// steps (see near).
	span  float64
	steps int
}

// cursor is a Badger iterator over the object keys and the key it is on
// (valid only when ok).
type cursor struct {
	it   *badger.Iterator
	key  [cursorKeyLength]byte
	ok   bool
	used uint64
}

func (v *cursorView) close() {
	for _, c := range v.cursors {
		c.it.Close()
	}
	v.cursors = nil
}

func (v *cursorView) Get(h Hash) (kind Kind, payload []byte, err error) {
	err = v.tv.r.read(func() error {
		item, err := v.find(h)
		if err != nil {
			return err
		}
		if item == nil {
			return fmt.Errorf("object %s: %w", h, ErrNotFound)
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		kind, payload, err = decodeObjectValue(h, val)
		return err
	})
	return kind, payload, err
}

func (v *cursorView) Has(h Hash) (ok bool, err error) {
	err = v.tv.r.read(func() error {
		item, err := v.find(h)
		ok = item != nil
		return err
	})
	return ok, err
}

// find returns the item stored under h's key, or nil when there is none.
func (v *cursorView) find(h Hash) (*badger.Item, error) {
	var key [cursorKeyLength]byte
	copy(key[:], objPrefix)
	copy(key[len(objPrefix):], h[:])
	v.tick++
	// The nearest cursor at or below the key.
	var best *cursor
	for _, c := range v.cursors {
		if c.ok && bytes.Compare(c.key[:], key[:]) <= 0 && (best == nil || bytes.Compare(c.key[:], best.key[:]) > 0) {
			best = c
		}
	}
	if best == nil {
		// The start of a sequence (or of its next pass): a cursor, new
		// or the least recently used, seeks the key.
		c := v.seekable()
		c.used = v.tick
		c.it.Seek(key[:])
		c.load()
		if c.ok && c.key == key {
			return c.it.Item(), nil
		}
		return nil, nil
	}
	best.used = v.tick
	if v.near(best, &key) {
		for steps := 0; ; steps++ {
			switch cmp := bytes.Compare(best.key[:], key[:]); {
			case cmp == 0:
				return best.it.Item(), nil
			case cmp > 0:
				return nil, nil // stepped past it: not stored
			}
			if steps == cursorMaxSkip {
				break
			}
			from := keyPosition(&best.key)
			best.it.Next()
			best.load()
			if !best.ok {
				return nil, nil // past the last object
			}
			v.span += float64(keyPosition(&best.key) - from)
			v.steps++
		}
	}
	// Far ahead of the cursor: a point lookup answers, and the cursor
	// stays (a sparse sequence is read as View reads it).
	item, err := v.tv.txn.Get(key[:])
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	return item, err
}

// near reports whether stepping c forward probably reaches key within
// cursorMaxSkip steps. Object keys are hashes, spread evenly, so the
// distance between two keys, divided by the mean distance one step has
// covered so far, estimates the steps between them; until enough steps
// were taken to say, it tries.
func (v *cursorView) near(c *cursor, key *[cursorKeyLength]byte) bool {
	if v.steps < 64 {
		return true
	}
	gap := float64(keyPosition(key) - keyPosition(&c.key))
	return gap <= cursorMaxSkip*v.span/float64(v.steps)
}

// keyPosition is where an object key sits in the key space: the first 8
// bytes of its hash.
func keyPosition(k *[cursorKeyLength]byte) uint64 {
	return binary.BigEndian.Uint64(k[len(objPrefix):])
}

// seekable returns a new cursor while there are fewer than viewCursors,
// else the least recently used one.
func (v *cursorView) seekable() *cursor {
	if len(v.cursors) < viewCursors {
		// No value prefetching: it reads values in goroutines of Badger's,
		// where a damaged file would crash the process.
		c := &cursor{it: v.tv.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(objPrefix)})}
		v.cursors = append(v.cursors, c)
		return c
	}
	lru := v.cursors[0]
	for _, c := range v.cursors[1:] {
		if c.used < lru.used {
			lru = c
		}
	}
	return lru
}

// load records where the iterator is. A key of the object family that is
// not an object key (damage) ends the cursor's run: lookups past it seek.
func (c *cursor) load() {
	c.ok = false
	if !c.it.Valid() {
		return
	}
	k := c.it.Item().Key()
	if len(k) != cursorKeyLength {
		return
	}
	copy(c.key[:], k)
	c.ok = true
}
