package repo_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// refDiff is the plain side-by-side merge of a new tree with its bases,
// over the entries FORMAT.md's rules read (repotest.SpecTree): a base is
// compared with as far as it keeps the rules, the new tree's entries up to
// its first broken rule are reported, and its error is DecodeTree's. It
// checks that DiffTree's skip of identical runs changes nothing: same
// entries reported in the same order with the same base hashes, same error.
func refDiff(h repo.Hash, payload []byte, bases [][]byte) ([]string, error) {
	var err error
	if _, derr := repo.DecodeTree(payload); derr != nil {
		// DiffTree names the tree it was given.
		err = fmt.Errorf("%s", strings.Replace(derr.Error(), "tree:", "tree "+h.String()+":", 1))
	}
	cur, _ := repotest.SpecTree(payload)
	var baseEntries [][]repo.TreeEntry
	for _, bp := range bases {
		es, _ := repotest.SpecTree(bp)
		baseEntries = append(baseEntries, es)
	}
	var out []string
	for _, e := range cur {
		var same []repo.Hash
		equal := false
		for _, bes := range baseEntries {
			i, found := slices.BinarySearchFunc(bes, e, repotest.EntryCompare)
			if !found {
				continue
			}
			if bes[i].Hash == e.Hash {
				equal = true
				break
			}
			if e.Kind == repo.EntrySubtree {
				same = repo.AppendUnique(same, bes[i].Hash)
			}
		}
		if !equal {
			out = append(out, fmt.Sprintf("%d %x %v", e.Kind, e.Hash[:], same))
		}
	}
	return out, err
}

// diffTree runs DiffTree and returns its reports in refDiff's form.
func diffTree(h repo.Hash, payload []byte, bases [][]byte) ([]string, error) {
	var out []string
	err := repo.DiffTree(h, payload, bases, func(kind repo.EntryKind, eh repo.Hash, same []repo.Hash) error {
		out = append(out, fmt.Sprintf("%d %x %v", kind, eh[:], same))
		return nil
	})
	return out, err
}

func encode(t *testing.T, es []repo.TreeEntry) []byte {
	t.Helper()
	p, err := (&repo.Tree{Entries: es}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDiffTreeSkipIdenticalSameAsMerge checks DiffTree (with its skip of
// identical runs) against the plain merge on random trees, one to three
// bases, and corrupt new and base trees: same reports in the same order and
// the same error.
func TestDiffTreeSkipIdenticalSameAsMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := repo.Hash{0x11}
	for iter := 0; iter < 3000; iter++ {
		base := repotest.RandTree(r, r.IntN(300))
		cur := repotest.MutateTree(r, base)
		bases := [][]byte{encode(t, base)}
		for j := r.IntN(3); j > 0; j-- {
			bases = append(bases, encode(t, repotest.MutateTree(r, base)))
		}
		np := encode(t, cur)
		switch r.IntN(5) {
		case 0:
			np = repotest.CorruptTree(r, np)
		case 1:
			i := r.IntN(len(bases))
			bases[i] = repotest.CorruptTree(r, bases[i])
		}
		want, wantErr := refDiff(h, np, bases)
		got, gotErr := diffTree(h, np, bases)
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

// TestDiffValidTreeSameAsDiffTree checks DiffValidTree, which steps over
// identical runs of a validated tree without parsing them, against
// DiffTree on random valid trees with one to three bases (some corrupt, as
// a base may be): the same reports in the same order, and no error.
func TestDiffValidTreeSameAsDiffTree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := repo.Hash{0x22}
	compared := 0
	for iter := 0; iter < 3000; iter++ {
		base := repotest.RandTree(r, r.IntN(300))
		cur := repotest.MutateTree(r, base)
		np, err := (&repo.Tree{Entries: cur}).Encode()
		if err != nil {
			continue // a mutation that broke a rule (a repeated name): not a valid tree
		}
		compared++
		bases := [][]byte{encode(t, base)}
		for j := r.IntN(3); j > 0; j-- {
			// A base need not keep the rules.
			bp, err := (&repo.Tree{Entries: repotest.MutateTree(r, base)}).Encode()
			if err != nil || r.IntN(4) == 0 {
				bp = repotest.CorruptTree(r, bases[0])
			}
			bases = append(bases, bp)
		}
		if err := repo.Validate(repo.KindTree, np); err != nil {
			t.Fatal(err)
		}
		want, wantErr := diffTree(h, np, bases)
		var got []string
		gotErr := repo.DiffValidTree(h, np, bases, func(kind repo.EntryKind, eh repo.Hash, same []repo.Hash) error {
			got = append(got, fmt.Sprintf("%d %x %v", kind, eh[:], same))
			return nil
		})
		if wantErr != nil || gotErr != nil {
			t.Fatalf("iteration %d: errors %v and %v on a valid tree", iter, gotErr, wantErr)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d:\ngot  %q\nwant %q", iter, got, want)
		}
	}
	if compared < 2700 {
		t.Fatalf("only %d of 3000 random trees were valid", compared)
	}
}

// BenchmarkDiffApex compares a flat zone's apex tree (100,000 names) with
// the one it replaces, one name changed: DiffTree checks every entry of the
// new tree again, DiffValidTree only steps over the identical runs.
func BenchmarkDiffApex(b *testing.B) {
	const n = 100000
	es := make([]repo.TreeEntry, n)
	for i := range es {
		es[i] = repo.TreeEntry{Kind: repo.EntrySubtree, Name: fmt.Sprintf("h%06d", i), Hash: repo.HashObject(repo.KindBlob, []byte(fmt.Sprint(i)))}
	}
	base, err := (&repo.Tree{Entries: es}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	es[n/3].Hash[0]++
	cur, err := (&repo.Tree{Entries: es}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	h := repo.HashObject(repo.KindTree, cur)
	count := func(repo.EntryKind, repo.Hash, []repo.Hash) error { return nil }
	for _, c := range []struct {
		name string
		diff func(repo.Hash, []byte, [][]byte, func(repo.EntryKind, repo.Hash, []repo.Hash) error) error
	}{{"checked", repo.DiffTree}, {"valid", repo.DiffValidTree}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(cur)))
			for b.Loop() {
				if err := c.diff(h, cur, [][]byte{base}, count); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
