package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// treeIter reads the entries of a tree payload in place, without
// allocating, and is the one reader of the tree format: DecodeTree collects
// its entries, Validate and Links run it, DiffTree runs one per tree it
// compares. It enforces every rule of FORMAT.md: version 1, a minimally
// encoded entry count that fits the payload, known entry kinds, names of 1
// to 255 bytes, no truncation, no trailing bytes, entries strictly
// increasing by (kind, name) — so no duplicates either. Errors wrap
// ErrCorrupt and name the tree (when its hash is known), the entry and the
// byte offset.
type treeIter struct {
	tree Hash // for messages; zero when unknown
	p    []byte
	off  int
	left uint64 // entries not yet read
	idx  int    // entries read
	done bool
	err  error

	// The current entry; name and hash alias p.
	kind EntryKind
	name []byte
	hash []byte
}

// newTreeIter checks p's header and returns an iterator before its first
// entry. h names the tree in errors (ZeroHash: "tree: ...").
func newTreeIter(h Hash, p []byte) (treeIter, error) {
	it := treeIter{tree: h, p: p}
	if len(p) == 0 {
		return it, it.errorf("empty payload")
	}
	if p[0] != treeVersion {
		return it, it.errorf("version %d, want 1", p[0])
	}
	count, n := binary.Uvarint(p[1:])
	if n <= 0 {
		return it, it.errorf("bad entry count varint at byte 1")
	}
	// binary.Uvarint accepts padded encodings such as 80 00 for 0; only the
	// shortest form is canonical (one tree, one hash).
	if n != uvarintLen(count) {
		return it, it.errorf("entry count varint at byte 1 is not minimally encoded")
	}
	off := 1 + n
	// Each entry takes at least 2+1+32 bytes; bound the count before anyone
	// allocates by it.
	if count > uint64(len(p)-off)/35 {
		return it, it.errorf("entry count %d does not fit in %d bytes", count, len(p)-off)
	}
	it.off, it.left = off, count
	return it, nil
}

// next advances to the next entry: false at the end or on an error
// (it.err).
func (it *treeIter) next() bool {
	if it.done {
		return false
	}
	if it.left == 0 {
		it.done = true
		if it.off != len(it.p) {
			it.err = it.errorf("%d trailing bytes after %d entries", len(it.p)-it.off, it.idx)
		}
		return false
	}
	p, off, i := it.p, it.off, it.idx
	if len(p)-off < 2 {
		return it.fail("entry %d truncated at byte %d", i, off)
	}
	k, l := EntryKind(p[off]), int(p[off+1])
	if k > EntryLeaf {
		return it.fail("entry %d: unknown kind %d at byte %d", i, k, off)
	}
	if l == 0 {
		return it.fail("entry %d: empty name at byte %d", i, off+1)
	}
	if len(p)-off-2 < l+32 {
		return it.fail("entry %d truncated at byte %d", i, off+2)
	}
	name := p[off+2 : off+2+l]
	if i > 0 {
		switch c := entryCmp(it.kind, it.name, k, name); {
		case c == 0:
			return it.fail("entry %d %q is a duplicate", i, name)
		case c > 0:
			return it.fail("entry %d %q is out of order after %q", i, name, it.name)
		}
	}
	it.kind, it.name, it.hash = k, name, p[off+2+l:off+2+l+32]
	it.off = off + 2 + l + 32
	it.left--
	it.idx++
	return true
}

func (it *treeIter) fail(format string, args ...any) bool {
	it.done = true
	it.err = it.errorf(format, args...)
	return false
}

func (it *treeIter) errorf(format string, args ...any) error {
	what := "tree"
	if !it.tree.IsZero() {
		what = "tree " + it.tree.String()
	}
	return fmt.Errorf("%s: %s: %w", what, fmt.Sprintf(format, args...), ErrCorrupt)
}

// entryCmp orders entries as the format does: by kind, then bytewise by
// name.
func entryCmp(ak EntryKind, an []byte, bk EntryKind, bn []byte) int {
	if ak != bk {
		if ak < bk {
			return -1
		}
		return 1
	}
	return bytes.Compare(an, bn)
}

// uvarintLen is the length of the shortest uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// TreeEntryCount returns the number of entries tree payload p declares in
// its header (ok false: p has no valid header), for a caller sizing what
// it will hold per entry before it walks them.
func TreeEntryCount(p []byte) (n int, ok bool) {
	it, err := newTreeIter(ZeroHash, p)
	if err != nil {
		return 0, false
	}
	return int(it.left), true
}
