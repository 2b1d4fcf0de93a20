package walk

import (
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// TestWalkRevertedTree: a history whose first commit's tree comes back
// later (a change, then its revert) has that tree under two missing
// commits. It is compared with the bases of one of them; those bases are
// trees of missing commits, so what they hold unchanged is left to them,
// and they must report it. Had the tree been compared with its newest
// commit's parent (the changed tree) while the changed tree is compared
// with it, each would have left their common entries to the other: a
// first pull got the few changed objects and a ref at an incomplete
// closure. Every order of the clocks (commits older than their parents
// too) gives the whole closure, to Missing and to Check.
func TestWalkRevertedTree(t *testing.T) {
	const zone = "example.com."
	for _, skew := range []int64{0, -1000, 1000} {
		r := repotest.MemRepo(t)
		c0 := must[repo.Hash](t)(repotest.SyntheticZone(r, zone, "main", 30))
		_, p, _ := r.Get(c0)
		cc := must[*repo.Commit](t)(repo.DecodeCommit(p))
		c1 := must[repo.Hash](t)(repotest.SetA(r, zone, "main", []string{"www"}, 300, [4]byte{192, 0, 2, 9}))
		sig := repotest.Author
		sig.When += 100 + skew
		tip := must[repo.Hash](t)(r.PutObject(repo.KindCommit, (&repo.Commit{Tree: cc.Tree, Parents: []repo.Hash{c1}, Author: sig, Committer: sig, Message: "revert\n"}).Encode()))
		got, _ := walkSet(t, r, []repo.Hash{tip}, nil)
		assertExact(t, got, wantDiff(t, r, []repo.Hash{tip}, nil))
		checked := checkReached(t, r, tip)
		for h := range repotest.Closure(t, r, tip) {
			if _, ok := checked[h]; !ok {
				t.Errorf("skew %d: Check did not reach %s", skew, h.Short())
			}
		}
	}
}

// TestWalkTreeOfAnotherCommitInside: trees that hold other commits' trees
// as subtrees, and commits sharing trees, so that a tree's bases (the
// trees at its place in its commit's parents) are trees met elsewhere
// first. Every object of the closure is reported and checked.
func TestWalkTreeOfAnotherCommitInside(t *testing.T) {
	r := repotest.MemRepo(t)
	put := func(kind repo.Kind, p []byte) repo.Hash { return must[repo.Hash](t)(r.PutObject(kind, p)) }
	blob := func(owner string, ip byte) repo.Hash {
		return put(repo.KindBlob, must[[]byte](t)((&repo.Blob{Owner: owner, Class: 1, Type: 1, TTL: 300, RData: [][]byte{{192, 0, 2, ip}}}).Encode()))
	}
	tree := func(es ...repo.TreeEntry) repo.Hash {
		return put(repo.KindTree, must[[]byte](t)((&repo.Tree{Entries: es}).Encode()))
	}
	sub := func(name string, h repo.Hash) repo.TreeEntry {
		return repo.TreeEntry{Kind: repo.EntrySubtree, Name: name, Hash: h}
	}
	leaf := func(name string, h repo.Hash) repo.TreeEntry {
		return repo.TreeEntry{Kind: repo.EntryLeaf, Name: name, Hash: h}
	}
	commit := func(tr repo.Hash, when int64, parents ...repo.Hash) repo.Hash {
		sig := repotest.Author
		sig.When = when
		return put(repo.KindCommit, (&repo.Commit{Tree: tr, Parents: parents, Author: sig, Committer: sig, Message: "c\n"}).Encode())
	}
	hidden := blob("h.example.com.", 1)
	x := tree(leaf("A", hidden), leaf("TXT", blob("x.example.com.", 2)))
	y := tree(leaf("A", hidden), leaf("TXT", blob("y.example.com.", 3)))
	inner := tree(sub("a", y), leaf("A", blob("i.example.com.", 4)))
	outer := tree(sub("a", x), sub("in", inner), leaf("A", blob("o.example.com.", 5)))
	c0 := commit(outer, 100)
	c1 := commit(inner, 200, c0)
	c2 := commit(outer, 300, c1)
	tip := commit(tree(sub("a", x), sub("b", y), sub("in", inner)), 400, c1, c2, c2)
	for _, root := range []repo.Hash{c1, c2, tip} {
		got, _ := walkSet(t, r, []repo.Hash{root}, nil)
		assertExact(t, got, wantDiff(t, r, []repo.Hash{root}, nil))
		checked := checkReached(t, r, root)
		for h := range repotest.Closure(t, r, root) {
			if _, ok := checked[h]; !ok {
				t.Errorf("root %s: Check did not reach %s", root.Short(), h.Short())
			}
		}
	}
}

// checkReached runs a Check of root with nothing known and returns what it
// reached (a blob may be reported more than once: a check does not
// remember blobs), failing on problems.
func checkReached(t *testing.T, rd repo.Reader, root repo.Hash) map[repo.Hash]bool {
	t.Helper()
	got := map[repo.Hash]bool{}
	_, err := Check(rd, []repo.Hash{root}, nil, func(h repo.Hash, _ repo.Kind, _ []byte) error {
		got[h] = true
		return nil
	}, func(h repo.Hash, want repo.Kind, err error) error {
		t.Errorf("problem with %s (%s): %v", h.Short(), want, err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
