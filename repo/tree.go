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

// ObjectKind is the kind of object an entry of kind k points at: a tree
// for a subtree, a blob for a leaf.
func (k EntryKind) ObjectKind() Kind {
	if k == EntrySubtree {
		return KindTree
	}
	return KindBlob
}

// ObjectKind is the kind of object the entry points at.
func (e TreeEntry) ObjectKind() Kind { return e.Kind.ObjectKind() }

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

// DecodeTree strictly decodes a tree payload (see treeIter for the rules it
// enforces); errors say which entry and byte offset is wrong.
func DecodeTree(p []byte) (*Tree, error) {
	it, err := newTreeIter(ZeroHash, p)
	if err != nil {
		return nil, err
	}
	t := &Tree{Entries: make([]TreeEntry, 0, it.left)}
	for it.next() {
		t.Entries = append(t.Entries, TreeEntry{Kind: it.kind, Name: string(it.name), Hash: Hash(it.hash)})
	}
	if it.err != nil {
		return nil, it.err
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
