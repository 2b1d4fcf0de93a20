package repotest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// SpecTree reads a tree payload the plain way, straight from the rules of
// FORMAT.md ("tree"), as the oracle the one tree reader (repo.DecodeTree,
// repo.DiffTree) is tested against: version 1; a uvarint entry count in its
// shortest form (one tree, one hash) that the payload can hold; entries of
// kind 0 or 1, a name of 1..255 bytes and a 32-byte hash, sorted by kind
// then name as raw bytes, no duplicates; nothing truncated, nothing after.
// It returns the entries before the first broken rule (none when the header
// is broken) and whether the payload keeps every rule.
func SpecTree(p []byte) ([]repo.TreeEntry, bool) {
	if len(p) < 1 || p[0] != 1 {
		return nil, false
	}
	count, n := binary.Uvarint(p[1:])
	if n <= 0 || n != len(binary.AppendUvarint(nil, count)) || count > uint64(len(p)-1-n)/35 {
		return nil, false
	}
	rest := p[1+n:]
	var out []repo.TreeEntry
	for i := uint64(0); i < count; i++ {
		if len(rest) < 2 {
			return out, false
		}
		kind, l := rest[0], int(rest[1])
		if kind > 1 || l < 1 || len(rest) < 2+l+32 {
			return out, false
		}
		e := repo.TreeEntry{Kind: repo.EntryKind(kind), Name: string(rest[2 : 2+l]), Hash: repo.Hash(rest[2+l : 2+l+32])}
		if len(out) > 0 && EntryCompare(out[len(out)-1], e) >= 0 {
			return out, false // out of order or duplicate
		}
		out = append(out, e)
		rest = rest[2+l+32:]
	}
	return out, len(rest) == 0
}

// EntryCompare orders tree entries as FORMAT.md does: by kind, then by name
// as raw bytes.
func EntryCompare(a, b repo.TreeEntry) int {
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	return bytes.Compare([]byte(a.Name), []byte(b.Name))
}

// RandTree is n entries in order, about a third of them subtrees, named
// n00000, n00002, ... (even numbers, so MutateTree can insert between).
func RandTree(r *rand.Rand, n int) []repo.TreeEntry {
	es := make([]repo.TreeEntry, 0, n)
	for i := 0; i < n; i++ {
		var h repo.Hash
		h[0], h[1], h[2] = byte(r.IntN(256)), byte(i), byte(i>>8)
		k := repo.EntryLeaf
		if r.IntN(3) == 0 {
			k = repo.EntrySubtree
		}
		es = append(es, repo.TreeEntry{Kind: k, Name: fmt.Sprintf("n%05d", i*2), Hash: h})
	}
	return es
}

// MutateTree makes one to four changes of the kinds a zone sees (changed,
// removed and added records, a name turning from leaf to subtree) to a copy
// of es, keeping it in order.
func MutateTree(r *rand.Rand, es []repo.TreeEntry) []repo.TreeEntry {
	es = slices.Clone(es)
	for m := r.IntN(4); m >= 0; m-- {
		if len(es) == 0 {
			break
		}
		i := r.IntN(len(es))
		switch r.IntN(4) {
		case 0: // changed record
			es[i].Hash[31]++
		case 1: // removed name
			es = slices.Delete(es, i, i+1)
		case 2: // added name (odd: between existing ones), sometimes longer
			name := fmt.Sprintf("n%05d", 2*r.IntN(len(es)+1)+1)
			if r.IntN(2) == 0 {
				name += "-long"
			}
			e := repo.TreeEntry{Kind: repo.EntryLeaf, Name: name, Hash: repo.Hash{0xad, byte(i)}}
			j, found := slices.BinarySearchFunc(es, e, EntryCompare)
			if !found {
				es = slices.Insert(es, j, e)
			}
		case 3: // kind change
			es[i].Kind ^= 1
			slices.SortFunc(es, EntryCompare)
			es = slices.CompactFunc(es, func(a, b repo.TreeEntry) bool { return a.Kind == b.Kind && a.Name == b.Name })
		}
	}
	return es
}

// CorruptTree damages a copy of a payload the way a bad store might: a
// flipped byte, a truncation, or two adjacent bytes swapped (entries out of
// order).
func CorruptTree(r *rand.Rand, p []byte) []byte {
	p = slices.Clone(p)
	if len(p) < 4 {
		return p
	}
	switch r.IntN(3) {
	case 0:
		p[1+r.IntN(len(p)-1)] ^= byte(1 + r.IntN(255))
	case 1:
		p = p[:len(p)-1-r.IntN(len(p)/2)]
	case 2:
		i := 1 + r.IntN(len(p)-2)
		p[i], p[i+1] = p[i+1], p[i]
	}
	return p
}

// RawTree encodes entries as given (FORMAT.md), without the order checks of
// repo.Tree.Encode, so a test can write a tree that breaks them.
func RawTree(es []repo.TreeEntry) []byte {
	p := []byte{1}
	p = binary.AppendUvarint(p, uint64(len(es)))
	for _, e := range es {
		p = append(p, byte(e.Kind), byte(len(e.Name)))
		p = append(p, e.Name...)
		p = append(p, e.Hash[:]...)
	}
	return p
}
