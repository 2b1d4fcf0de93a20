package replicate

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// refLinkTree is puller.linkTree, folded into the wanted set as receive
// does, written as a plain merge with the base over the entries FORMAT.md's
// rules read (repotest.SpecTree; the base as far as it keeps them), kept to
// check that the comparison linkTree uses changes nothing: the same
// children wanted with the same kinds, the same bases for replaced
// subtrees, the same error (DecodeTree's, naming the tree).
func refLinkTree(h repo.Hash, payload, base []byte) (map[repo.Hash]kindSet, map[repo.Hash]repo.Hash, error) {
	wanted := map[repo.Hash]kindSet{}
	bases := map[repo.Hash]repo.Hash{}
	if _, derr := repo.DecodeTree(payload); derr != nil {
		return wanted, bases, fmt.Errorf("%s", strings.Replace(derr.Error(), "tree:", "tree "+h.String()+":", 1))
	}
	cur, _ := repotest.SpecTree(payload)
	var known []repo.TreeEntry
	if base != nil {
		known, _ = repotest.SpecTree(base)
	}
	for _, e := range cur {
		i, same := slices.BinarySearchFunc(known, e, repotest.EntryCompare)
		if same && known[i].Hash == e.Hash {
			continue
		}
		want := setBlob
		if e.Kind == repo.EntrySubtree {
			want = setTree
		}
		if w, ok := wanted[e.Hash]; ok {
			wanted[e.Hash] = w & want
			continue
		}
		wanted[e.Hash] = want
		if same && e.Kind == repo.EntrySubtree {
			bases[e.Hash] = known[i].Hash
		}
	}
	return wanted, bases, nil
}

// runLinkTree stores base (if any) in local, runs puller.linkTree on the
// new tree np with base as its local counterpart, and folds its links into
// the wanted set as receive does.
func runLinkTree(t *testing.T, local *repo.Repo, np, bp []byte) (repo.Hash, map[repo.Hash]kindSet, map[repo.Hash]repo.Hash, error) {
	return runLinkTreeAs(t, local, np, bp, false)
}

// runLinkTreeAs is runLinkTree, telling linkTree whether np was decoded
// strictly before (valid), as receive does.
func runLinkTreeAs(t *testing.T, local *repo.Repo, np, bp []byte, valid bool) (repo.Hash, map[repo.Hash]kindSet, map[repo.Hash]repo.Hash, error) {
	t.Helper()
	h := repo.HashObject(repo.KindTree, np)
	ps := &packState{bases: map[repo.Hash]repo.Hash{}}
	if bp != nil {
		bh, err := local.PutObject(repo.KindTree, bp)
		if err != nil {
			t.Fatal(err)
		}
		ps.bases[h] = bh
	}
	p := &puller{c: &Client{Local: local}, local: local, pack: ps}
	var linked []repo.Hash
	err := p.packLinks(h, repo.KindTree, np, valid, func(l link) {
		linked = append(linked, l.h)
		p.want(l)
	})
	delete(ps.bases, h)
	// The wanted set lives in the receipts, keyed so it cannot be listed:
	// ask it about every hash linked, and make sure it holds no other.
	wanted := map[repo.Hash]kindSet{}
	for _, c := range linked {
		if ks, ok, _ := p.got.wantedAs(c); ok {
			wanted[c] = ks
		}
	}
	if len(wanted) != p.got.wanted {
		t.Fatalf("%d links wanted, the receipts count %d", len(wanted), p.got.wanted)
	}
	return h, wanted, ps.bases, err
}

// missingChildren is what a pull must fetch for the new tree es given the
// complete local tree base: every child not byte-identical (kind, name,
// hash) to an entry of base.
func missingChildren(es, base []repo.TreeEntry) map[repo.Hash]bool {
	have := map[repo.TreeEntry]bool{}
	for _, e := range base {
		have[e] = true
	}
	out := map[repo.Hash]bool{}
	for _, e := range es {
		if !have[e] {
			out[e.Hash] = true
		}
	}
	return out
}

func sortEntries(es []repo.TreeEntry) []repo.TreeEntry {
	slices.SortFunc(es, repotest.EntryCompare)
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

// TestLinkTreeDetectsMissingChildren: a new tree that differs from its
// local base in several places (first and last entries, adjacent entries,
// inserted and removed names, replaced subtrees) puts exactly the children
// that are not in the base in pending, so each is fetched or the pull
// fails; the identical runs in between are vouched for by the base.
func TestLinkTreeDetectsMissingChildren(t *testing.T) {
	local, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = local.Close() }()
	const n = 64
	base := make([]repo.TreeEntry, n)
	for i := range base {
		k := repo.EntryLeaf
		if i%5 == 0 {
			k = repo.EntrySubtree
		}
		base[i] = repo.TreeEntry{Kind: k, Name: fmt.Sprintf("n%05d", i*2), Hash: repo.Hash{0xba, byte(i)}}
	}
	base = sortEntries(base)
	changed := func(at ...int) func([]repo.TreeEntry) []repo.TreeEntry {
		return func(es []repo.TreeEntry) []repo.TreeEntry {
			for _, i := range at {
				es[i].Hash = repo.Hash{0xc0, byte(i)}
			}
			return es
		}
	}
	every := func(step int) []int {
		var at []int
		for i := 0; i < n; i += step {
			at = append(at, i)
		}
		return at
	}
	cases := map[string]func([]repo.TreeEntry) []repo.TreeEntry{
		"first":                changed(0),
		"last":                 changed(n - 1),
		"first and last":       changed(0, n-1),
		"adjacent pair":        changed(20, 21),
		"adjacent at start":    changed(0, 1, 2),
		"adjacent at end":      changed(n-3, n-2, n-1),
		"scattered":            changed(0, 7, 8, 9, 33, n-2, n-1),
		"every other":          changed(every(2)...),
		"all":                  changed(every(1)...),
		"subtree replaced (0)": changed(0), // base[0] is a subtree
		"inserted first": func(es []repo.TreeEntry) []repo.TreeEntry {
			return sortEntries(append(es, repo.TreeEntry{Kind: es[0].Kind, Name: "a", Hash: repo.Hash{0xad, 1}}))
		},
		"inserted last": func(es []repo.TreeEntry) []repo.TreeEntry {
			return append(es, repo.TreeEntry{Kind: es[n-1].Kind, Name: "z", Hash: repo.Hash{0xad, 2}})
		},
		"inserted adjacent": func(es []repo.TreeEntry) []repo.TreeEntry {
			return sortEntries(append(es, repo.TreeEntry{Kind: es[30].Kind, Name: es[30].Name + "a", Hash: repo.Hash{0xad, 3}}, repo.TreeEntry{Kind: es[30].Kind, Name: es[30].Name + "b", Hash: repo.Hash{0xad, 4}}))
		},
		"removed first changed": func(es []repo.TreeEntry) []repo.TreeEntry { return changed(1)(es[1:]) },
		"removed last changed":  func(es []repo.TreeEntry) []repo.TreeEntry { return changed(n - 2)(es[:n-1]) },
		"kind changed":          func(es []repo.TreeEntry) []repo.TreeEntry { es[40].Kind ^= 1; return sortEntries(es) },
		"identical":             func(es []repo.TreeEntry) []repo.TreeEntry { return es },
	}
	bp := encode(t, base)
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			es := mod(slices.Clone(base))
			np := encode(t, es)
			h, pending, bases, err := runLinkTree(t, local, np, bp)
			if err != nil {
				t.Fatal(err)
			}
			want := missingChildren(es, base)
			if got := slices.Collect(maps.Keys(pending)); len(got) != len(want) {
				t.Errorf("%d children pending, want %d", len(got), len(want))
			}
			for c := range want {
				if _, ok := pending[c]; !ok {
					t.Errorf("child %x is not in the base and was not linked", c[:2])
				}
			}
			for c := range pending {
				if !want[c] {
					t.Errorf("child %x is in the base but was linked", c[:2])
				}
			}
			rp, rb, rerr := refLinkTree(h, np, bp)
			if !maps.Equal(pending, rp) || !maps.Equal(bases, rb) || fmt.Sprint(err) != fmt.Sprint(rerr) {
				t.Errorf("differs from the plain merge: pending %v / %v, bases %v / %v, err %v / %v", pending, rp, bases, rb, err, rerr)
			}
		})
	}
}

// TestLinkTreeCorruptNewTree: a corrupt new tree fails linkTree even when
// the damage sits inside a run identical to the base (a base with the same
// damage), and random trees, mutations and corruptions of either side give
// exactly what the plain merge gives.
func TestLinkTreeCorruptNewTree(t *testing.T) {
	local, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = local.Close() }()

	// Entries 30 and 31 swapped (out of order) in both trees; the new tree
	// also differs at its first and last entries, so the skip starts before
	// the damage and would run over it if it did not parse what it skips.
	base := sortEntries(repotest.RandTree(rand.New(rand.NewPCG(3, 4)), 64))
	if string(repotest.RawTree(base)) != string(encode(t, base)) {
		t.Fatal("RawTree does not encode like repo.Tree.Encode")
	}
	bad := slices.Clone(base)
	bad[30], bad[31] = bad[31], bad[30]
	bp := repotest.RawTree(bad)
	nes := slices.Clone(bad)
	nes[0].Hash[31]++
	nes[len(nes)-1].Hash[31]++
	np := repotest.RawTree(nes)
	if _, err := repo.DecodeTree(np); err == nil {
		t.Fatal("test tree decodes")
	}
	if _, _, _, err := runLinkTree(t, local, np, bp); err == nil {
		t.Fatal("a corrupt new tree identical to its (equally corrupt) base around the damage was accepted")
	}

	r := rand.New(rand.NewPCG(5, 6))
	for iter := 0; iter < 2000; iter++ {
		base := sortEntries(repotest.RandTree(r, r.IntN(200)))
		es := repotest.MutateTree(r, base)
		bp, np := encode(t, base), encode(t, es)
		corruptNew := false
		switch r.IntN(4) {
		case 0, 1:
			np = repotest.CorruptTree(r, np)
			corruptNew = true
		case 2:
			bp = repotest.CorruptTree(r, bp)
		}
		h, pending, bases, err := runLinkTree(t, local, np, bp)
		_, decErr := repo.DecodeTree(np)
		if (err != nil) != (decErr != nil) {
			t.Fatalf("iteration %d (corrupt new tree: %v): linkTree error %v, DecodeTree error %v", iter, corruptNew, err, decErr)
		}
		rp, rb, rerr := refLinkTree(h, np, bp)
		if fmt.Sprint(err) != fmt.Sprint(rerr) {
			t.Fatalf("iteration %d: error %v, plain merge %v", iter, err, rerr)
		}
		if err != nil {
			continue // the rounds read the tree back and fail its targets
		}
		if !maps.Equal(pending, rp) || !maps.Equal(bases, rb) {
			t.Fatalf("iteration %d: pending %d, bases %d; plain merge %d, %d", iter, len(pending), len(bases), len(rp), len(rb))
		}
		if !corruptNew && string(bp) == string(encode(t, base)) {
			for c := range missingChildren(es, base) {
				if _, ok := pending[c]; !ok {
					t.Fatalf("iteration %d: child %x is not in the base and was not linked", iter, c[:3])
				}
			}
		}
	}
}

// TestLinkTreeValidatedSameLinks: told that the new tree was validated (as
// receive does after checkFrame decoded it), linkTree compares without
// checking its entries again and links exactly what it links checking
// them, on random trees and mutations, with bases sound or corrupt.
func TestLinkTreeValidatedSameLinks(t *testing.T) {
	local, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = local.Close() }()
	r := rand.New(rand.NewPCG(7, 8))
	compared := 0
	for iter := 0; iter < 1000; iter++ {
		base := sortEntries(repotest.RandTree(r, r.IntN(200)))
		np, err := (&repo.Tree{Entries: repotest.MutateTree(r, base)}).Encode()
		if err != nil {
			continue // a mutation that broke a rule: not a valid tree
		}
		compared++
		bp := encode(t, base)
		if r.IntN(4) == 0 {
			bp = repotest.CorruptTree(r, bp)
		}
		_, wp, wb, werr := runLinkTreeAs(t, local, np, bp, false)
		_, gp, gb, gerr := runLinkTreeAs(t, local, np, bp, true)
		if werr != nil || gerr != nil {
			t.Fatalf("iteration %d: errors %v (validated) and %v on a valid tree", iter, gerr, werr)
		}
		if !maps.Equal(gp, wp) || !maps.Equal(gb, wb) {
			t.Fatalf("iteration %d: validated: pending %v, bases %v; checked: %v, %v", iter, gp, gb, wp, wb)
		}
	}
	if compared < 900 {
		t.Fatalf("only %d of 1000 random trees were valid", compared)
	}
}
