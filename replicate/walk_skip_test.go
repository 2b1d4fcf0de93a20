package replicate

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// mapReader is a repo.Reader over fixed objects.
type mapReader map[repo.Hash][]byte

func (m mapReader) Get(h repo.Hash) (repo.Kind, []byte, error) {
	if p, ok := m[h]; ok {
		return repo.KindTree, p, nil
	}
	return "", nil, fmt.Errorf("object %s: %w", h, repo.ErrNotFound)
}

func (m mapReader) Has(h repo.Hash) (bool, error) { _, ok := m[h]; return ok, nil }

// refDiff is the tree merge of diffTrees as it was before skipIdentical,
// kept to check that skipping identical runs changes nothing: same entries
// reported in the same order, same error. Only one level (no descent).
func refDiff(h repo.Hash, payload []byte, bases [][]byte) ([]string, error) {
	var out []string
	seen := map[repo.Hash]bool{}
	it, err := newTreeIter(h, payload)
	if err != nil {
		return nil, err
	}
	var its []treeIter
	for _, bp := range bases {
		bit, err := newTreeIter(repo.ZeroHash, bp)
		if err != nil {
			continue
		}
		if bit.next() {
			its = append(its, bit)
		}
	}
	for it.next() {
		var childBases []repo.Hash
		equal := false
		for i := range its {
			bi := &its[i]
			for !bi.done && entryCmp(bi.kind, bi.name, it.kind, it.name) < 0 {
				bi.next()
			}
			if bi.done || bi.kind != it.kind || !bytes.Equal(bi.name, it.name) {
				continue
			}
			if bytes.Equal(bi.hash, it.hash) {
				equal = true
				break
			}
			if it.kind == byte(repo.EntrySubtree) {
				var bh repo.Hash
				copy(bh[:], bi.hash)
				childBases = appendUnique(childBases, bh)
			}
		}
		if equal {
			continue
		}
		var eh repo.Hash
		copy(eh[:], it.hash)
		if seen[eh] {
			continue // reported once, as the walker does
		}
		seen[eh] = true
		out = append(out, fmt.Sprintf("%d %x %v", it.kind, it.hash, childBases))
	}
	return out, it.err
}

// walkDiff runs diffTrees on one tree and its bases and returns what it
// reports at that level, in refDiff's form (subtrees are not descended
// into: they are not in the reader, so the walk stops at the first one it
// opens, with everything it queued still in w.trees' array).
func walkDiff(h repo.Hash, payload []byte, bases [][]byte) ([]string, error) {
	rd := mapReader{h: payload}
	tw := treeWork{hash: h}
	for i, b := range bases {
		bh := repo.Hash{0xba, byte(i), 30: 0xee, 31: 0xff}
		rd[bh] = b
		tw.bases = append(tw.bases, bh)
	}
	type rep struct {
		kind repo.EntryKind
		h    repo.Hash
	}
	var reps []rep
	w := &walker{rd: rd, seen: map[repo.Hash]uint8{}, knownObj: map[repo.Hash]uint8{}, commits: map[repo.Hash]*commitNode{}}
	w.emitFn = func(eh repo.Hash, kind repo.Kind, _ []byte) error {
		k := repo.EntryLeaf
		if kind == repo.KindTree {
			k = repo.EntrySubtree
		}
		reps = append(reps, rep{k, eh})
		return nil
	}
	w.trees = []treeWork{tw}
	err := w.diffTrees()
	queued := w.trees // failed on a corrupt tree: nothing was popped
	if err != nil && errors.Is(err, repo.ErrNotFound) {
		err = nil
		queued = w.trees[:len(w.trees)+1]
	}
	var out []string
	for _, r := range reps {
		var cb []repo.Hash
		if r.kind == repo.EntrySubtree {
			cb, queued = queued[0].bases, queued[1:]
		}
		out = append(out, fmt.Sprintf("%d %x %v", r.kind, r.h[:], cb))
	}
	return out, err
}

func randTree(r *rand.Rand, n int) []repo.TreeEntry {
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

func mutate(r *rand.Rand, es []repo.TreeEntry) []repo.TreeEntry {
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
			j, found := slices.BinarySearchFunc(es, e, func(a, b repo.TreeEntry) int {
				return entryCmp(byte(a.Kind), []byte(a.Name), byte(b.Kind), []byte(b.Name))
			})
			if !found {
				es = slices.Insert(es, j, e)
			}
		case 3: // kind change
			es[i].Kind ^= 1
			slices.SortFunc(es, func(a, b repo.TreeEntry) int {
				return entryCmp(byte(a.Kind), []byte(a.Name), byte(b.Kind), []byte(b.Name))
			})
			es = slices.CompactFunc(es, func(a, b repo.TreeEntry) bool { return a.Kind == b.Kind && a.Name == b.Name })
		}
	}
	return es
}

func encode(t *testing.T, es []repo.TreeEntry) []byte {
	t.Helper()
	p, err := (&repo.Tree{Entries: es}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// corrupt damages a payload the way a bad store might: a flipped byte, a
// truncation, or two entries swapped (out of order).
func corrupt(r *rand.Rand, p []byte) []byte {
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

// TestDiffTreesSkipIdenticalSameAsMerge checks diffTrees (with its skip of
// identical runs) against the plain merge on random trees, one to three
// bases, and corrupt new and base trees: same reports in the same order and
// the same error.
func TestDiffTreesSkipIdenticalSameAsMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := repo.Hash{0x11}
	for iter := 0; iter < 3000; iter++ {
		base := randTree(r, r.IntN(300))
		cur := mutate(r, base)
		bases := [][]byte{encode(t, base)}
		for j := r.IntN(3); j > 0; j-- {
			bases = append(bases, encode(t, mutate(r, base)))
		}
		np := encode(t, cur)
		switch r.IntN(5) {
		case 0:
			np = corrupt(r, np)
		case 1:
			i := r.IntN(len(bases))
			bases[i] = corrupt(r, bases[i])
		}
		want, wantErr := refDiff(h, np, bases)
		got, gotErr := walkDiff(h, np, bases)
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
			t.Fatalf("iteration %d: error %v, want %v", iter, gotErr, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("iteration %d: %d reported, want %d (err %v)\ngot  %q\nwant %q", iter, len(got), len(want), gotErr, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("iteration %d: report %d is %q, want %q", iter, i, got[i], want[i])
			}
		}
	}
}
