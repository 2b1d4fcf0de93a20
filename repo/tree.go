package repo

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// EntryKind says what a tree entry points at.
type EntryKind uint8

const (
	// EntrySubtree names one DNS label and points at a tree.
	EntrySubtree EntryKind = 0
	// EntryLeaf names an RR type mnemonic ("A", "MX") and points at a blob.
	EntryLeaf EntryKind = 1
)

// TreeEntry is one child of a tree node.
type TreeEntry struct {
	Kind EntryKind
	Name string
	Hash Hash
}

// ObjectKind is the kind of object the entry points at.
func (e TreeEntry) ObjectKind() Kind {
	if e.Kind == EntrySubtree {
		return KindTree
	}
	return KindBlob
}

// Tree is one node of the label-wise zone tree.
type Tree struct {
	Entries []TreeEntry
}

const treeVersion = 1

func entryLess(a, b TreeEntry) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name // Go string comparison is bytewise
}

// Encode returns the canonical payload (entries sorted by kind, then name).
// Duplicate entries are an error rather than silently dropped.
func (t *Tree) Encode() ([]byte, error) {
	// Entries that are already in order (the importer and the decoder
	// produce them so) are used in place: a flat zone's root holds one
	// entry per name and a copy of it is a large share of an import's memory.
	es := t.Entries
	if !sort.SliceIsSorted(es, func(i, j int) bool { return entryLess(es[i], es[j]) }) {
		es = make([]TreeEntry, len(t.Entries))
		copy(es, t.Entries)
		sort.Slice(es, func(i, j int) bool { return entryLess(es[i], es[j]) })
	}
	n := 1 + binary.MaxVarintLen64
	for i, e := range es {
		if e.Kind > EntryLeaf {
			return nil, fmt.Errorf("tree entry %q: unknown kind %d", e.Name, e.Kind)
		}
		if len(e.Name) == 0 || len(e.Name) > 255 {
			return nil, fmt.Errorf("tree entry %q: name must be 1..255 bytes", e.Name)
		}
		if i > 0 && !entryLess(es[i-1], e) {
			return nil, fmt.Errorf("tree entry %q (kind %d) appears twice", e.Name, e.Kind)
		}
		n += 2 + len(e.Name) + 32
	}
	out := make([]byte, 0, n)
	out = append(out, treeVersion)
	out = binary.AppendUvarint(out, uint64(len(es)))
	for _, e := range es {
		out = append(out, byte(e.Kind), byte(len(e.Name)))
		out = append(out, e.Name...)
		out = append(out, e.Hash[:]...)
	}
	return out, nil
}

// DecodeTree strictly decodes a tree payload. It rejects a version other than
// 1, unknown entry kinds, truncation, trailing bytes, entries out of order and
// duplicate entries, saying which entry and byte offset is wrong.
func DecodeTree(p []byte) (*Tree, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("tree: empty payload: %w", ErrCorrupt)
	}
	if p[0] != treeVersion {
		return nil, fmt.Errorf("tree: version %d, want 1: %w", p[0], ErrCorrupt)
	}
	count, n := binary.Uvarint(p[1:])
	if n <= 0 {
		return nil, fmt.Errorf("tree: bad entry count varint at byte 1: %w", ErrCorrupt)
	}
	// binary.Uvarint accepts padded encodings such as 80 00 for 0; only the
	// shortest form is canonical (one tree, one hash).
	if n != uvarintLen(count) {
		return nil, fmt.Errorf("tree: entry count varint at byte 1 is not minimally encoded: %w", ErrCorrupt)
	}
	off := 1 + n
	// Each entry takes at least 2+1+32 bytes; bound the count before allocating.
	if count > uint64(len(p)-off)/35 {
		return nil, fmt.Errorf("tree: entry count %d does not fit in %d bytes: %w", count, len(p)-off, ErrCorrupt)
	}
	t := &Tree{Entries: make([]TreeEntry, 0, count)}
	for i := 0; i < int(count); i++ {
		if len(p)-off < 2 {
			return nil, fmt.Errorf("tree: entry %d truncated at byte %d: %w", i, off, ErrCorrupt)
		}
		k, l := EntryKind(p[off]), int(p[off+1])
		if k > EntryLeaf {
			return nil, fmt.Errorf("tree: entry %d: unknown kind %d at byte %d: %w", i, k, off, ErrCorrupt)
		}
		if l == 0 {
			return nil, fmt.Errorf("tree: entry %d: empty name at byte %d: %w", i, off+1, ErrCorrupt)
		}
		off += 2
		if len(p)-off < l+32 {
			return nil, fmt.Errorf("tree: entry %d truncated at byte %d: %w", i, off, ErrCorrupt)
		}
		e := TreeEntry{Kind: k, Name: string(p[off : off+l])}
		copy(e.Hash[:], p[off+l:off+l+32])
		off += l + 32
		if i > 0 {
			prev := t.Entries[i-1]
			if prev.Kind == e.Kind && prev.Name == e.Name {
				return nil, fmt.Errorf("tree: entry %d %q is a duplicate: %w", i, e.Name, ErrCorrupt)
			}
			if !entryLess(prev, e) {
				return nil, fmt.Errorf("tree: entry %d %q is out of order after %q: %w", i, e.Name, prev.Name, ErrCorrupt)
			}
		}
		t.Entries = append(t.Entries, e)
	}
	if off != len(p) {
		return nil, fmt.Errorf("tree: %d trailing bytes after %d entries: %w", len(p)-off, count, ErrCorrupt)
	}
	return t, nil
}

// Find returns the entry with the given kind and name (binary search; entries
// of a decoded tree are sorted).
func (t *Tree) Find(kind EntryKind, name string) (TreeEntry, bool) {
	want := TreeEntry{Kind: kind, Name: name}
	i := sort.Search(len(t.Entries), func(i int) bool { return !entryLess(t.Entries[i], want) })
	if i < len(t.Entries) && t.Entries[i].Kind == kind && t.Entries[i].Name == name {
		return t.Entries[i], true
	}
	return TreeEntry{}, false
}

// uvarintLen is the length of the shortest uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}
