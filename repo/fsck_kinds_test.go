package repo

import (
	"context"
	"strings"
	"testing"
)

// TestFsckChecksEveryEdgeKind: an object reached twice must fit the kind
// each edge expects, not only the first one that reached it.
func TestFsckChecksEveryEdgeKind(t *testing.T) {
	const zone = "example.com."
	text := "$ORIGIN example.com.\n@ IN SOA ns1 host 1 2 3 4 5\nwww IN A 192.0.2.1\nmail IN MX 10 www\n"
	sig := Signature{Name: "a", Email: "b"}
	setup := func(t *testing.T) (*Repo, *ImportResult, map[string]Hash, map[string]Hash) {
		t.Helper()
		r := openTestRepo(t)
		res, err := importString(t, r, zone, "", text)
		if err != nil {
			t.Fatal(err)
		}
		trees, blobs := treeIndex(t, r, res.Tree)
		return r, res, trees, blobs
	}
	put := func(t *testing.T, r *Repo, kind Kind, payload []byte) Hash {
		t.Helper()
		h, err := r.PutObject(kind, payload)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tree := func(t *testing.T, r *Repo, es ...TreeEntry) Hash {
		t.Helper()
		p, err := (&Tree{Entries: es}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return put(t, r, KindTree, p)
	}
	// branch points a new branch at a commit of tree.
	branch := func(t *testing.T, r *Repo, name string, tree Hash) {
		t.Helper()
		c := put(t, r, KindCommit, (&Commit{Tree: tree, Author: sig, Committer: sig, Message: "x\n"}).Encode())
		if err := r.UpdateBranch(zone, name, ZeroHash, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	// want runs fsck and requires a problem of kind on h from ref whose
	// detail mentions detail.
	want := func(t *testing.T, r *Repo, ref, kind string, h Hash, detail string) {
		t.Helper()
		rep, err := r.Fsck(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rep.Problems {
			if p.Kind == kind && p.Hash == h && p.Ref == ref && strings.Contains(p.Detail, detail) {
				return
			}
		}
		t.Errorf("problems %v; want %s of %s from %s mentioning %q", rep.Problems, kind, h.Short(), ref, detail)
	}

	t.Run("branch at a tree also reached as a tree", func(t *testing.T) {
		r, res, _, _ := setup(t)
		// main (walked first) reaches res.Tree as a commit's tree; other
		// names the same tree as if it were a commit.
		if err := r.UpdateBranch(zone, "other", ZeroHash, res.Tree, nil); err != nil {
			t.Fatal(err)
		}
		want(t, r, BranchRef(zone, "other"), "wrong kind", res.Tree, "expects a commit")
	})
	t.Run("leaf at the HEAD symref", func(t *testing.T) {
		r, _, _, _ := setup(t)
		head, err := r.RefHash(HeadRef)
		if err != nil {
			t.Fatal(err)
		}
		// HEAD (walked first: "HEAD" sorts before "refs/") reaches the
		// symref object as a symref; a leaf entry then names it.
		branch(t, r, "leafsym", tree(t, r, TreeEntry{Kind: EntryLeaf, Name: "A", Hash: head}))
		want(t, r, BranchRef(zone, "leafsym"), "wrong kind", head, "expects a blob")
	})
	t.Run("one object as subtree and leaf", func(t *testing.T) {
		r, _, trees, _ := setup(t)
		www := trees["www"]
		branch(t, r, "both", tree(t, r,
			TreeEntry{Kind: EntrySubtree, Name: "www", Hash: www},
			TreeEntry{Kind: EntryLeaf, Name: "A", Hash: www}))
		want(t, r, BranchRef(zone, "both"), "wrong kind", www, "expects a blob")
	})
	t.Run("subtree at a blob reached as a leaf", func(t *testing.T) {
		r, _, _, blobs := setup(t)
		a := blobs["www A"]
		branch(t, r, "subblob", tree(t, r, TreeEntry{Kind: EntrySubtree, Name: "x", Hash: a}))
		want(t, r, BranchRef(zone, "subblob"), "wrong kind", a, "expects a tree")
	})
	t.Run("parent at a tree", func(t *testing.T) {
		r, res, _, _ := setup(t)
		c := put(t, r, KindCommit, (&Commit{Tree: res.Tree, Parents: []Hash{res.Tree}, Author: sig, Committer: sig, Message: "x\n"}).Encode())
		if err := r.UpdateBranch(zone, "badparent", ZeroHash, c, nil); err != nil {
			t.Fatal(err)
		}
		want(t, r, BranchRef(zone, "badparent"), "wrong kind", res.Tree, "expects a commit")
	})
	t.Run("tag object at a tree", func(t *testing.T) {
		r, res, _, _ := setup(t)
		tag := put(t, r, KindTag, (&Tag{Object: res.Tree, Type: KindTree, Name: "v1", Tagger: sig, Message: "x\n"}).Encode())
		if err := r.UpdateTag(zone, "v1", ZeroHash, tag, nil); err != nil {
			t.Fatal(err)
		}
		// A tag object naming a tree does not decode (a tag names a
		// commit), so the tag itself is the problem.
		want(t, r, TagRef(zone, "v1"), "undecodable", tag, "a tag names a commit")
	})
	t.Run("tag ref at a tree", func(t *testing.T) {
		r, res, _, _ := setup(t)
		if err := r.UpdateTag(zone, "v2", ZeroHash, res.Tree, nil); err != nil {
			t.Fatal(err)
		}
		want(t, r, TagRef(zone, "v2"), "wrong kind", res.Tree, "expects a commit or tag")
	})
	t.Run("blob that does not decode", func(t *testing.T) {
		r, _, _, _ := setup(t)
		bad := put(t, r, KindBlob, []byte("hashes right, decodes wrong"))
		branch(t, r, "badblob", tree(t, r, TreeEntry{Kind: EntryLeaf, Name: "A", Hash: bad}))
		want(t, r, BranchRef(zone, "badblob"), "undecodable", bad, "blob")
	})
	t.Run("sound repository has no problems", func(t *testing.T) {
		r, _, trees, _ := setup(t)
		// A second branch sharing subtrees with main is fine.
		branch(t, r, "shared", tree(t, r, TreeEntry{Kind: EntrySubtree, Name: "www", Hash: trees["www"]}))
		rep, err := r.Fsck(context.Background())
		if err != nil || !rep.OK() {
			t.Fatalf("report %+v, %v", rep, err)
		}
	})
}
