package repo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

func TestSecondWriterLocked(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second writable open: %v; want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q should name the directory and say another process holds it", err)
	}
	// Once the writer is gone, the directory opens again.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open after the first writer closed: %v", err)
	}
	r2.Close()
}

func TestUpdateBranchCAS(t *testing.T) {
	r := openTestRepo(t)
	a, err := r.PutObject(KindBlob, []byte{1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	b := HashObject(KindCommit, []byte("other"))
	const zone, br = "example.com.", "main"
	if err := r.UpdateBranch(zone, br, ZeroHash, a, nil); err != nil {
		t.Fatal(err)
	}
	// Create-only-if-absent on an existing branch.
	err = r.UpdateBranch(zone, br, ZeroHash, b, nil)
	var ce *ConflictError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ce) || ce.Found != a || ce.Expected != ZeroHash {
		t.Fatalf("create over existing: %v; want a ConflictError that found %s", err, a.Short())
	}
	// A stale expected value.
	if err := r.UpdateBranch(zone, br, b, a, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if tip, _ := r.Branch(zone, br); tip != a {
		t.Fatalf("a failed CAS moved the branch to %s", tip)
	}
	if err := r.UpdateBranch(zone, br, a, b, &ReflogEntry{Op: "commit", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	log, err := r.Reflog(BranchRef(zone, br))
	if err != nil || len(log) != 1 || log[0].Old != a || log[0].New != b {
		t.Fatalf("reflog %+v, %v", log, err)
	}
	// Delete with CAS.
	if err := r.UpdateBranch(zone, br, b, ZeroHash, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Branch(zone, br); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted branch: %v", err)
	}
	if err := r.UpdateBranch(zone, "a/b", ZeroHash, a, nil); !errors.Is(err, ErrInvalidName) {
		t.Errorf("branch a/b: %v", err)
	}
}

func TestPutVerifiesHash(t *testing.T) {
	r := openTestRepo(t)
	err := r.Put(HashObject(KindBlob, []byte("x")), KindBlob, []byte("y"))
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Put with a wrong hash: %v", err)
	}
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Cancel()
	if err := b.Put(HashObject(KindTree, []byte("x")), KindBlob, []byte("x")); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Batch.Put with the wrong kind: %v", err)
	}
}

// TestPutVerified: Verify refuses what does not hash to its name; what it
// returns is a copy a Batch stores as such; a Batch refuses a Verified that
// Verify did not make.
func TestPutVerified(t *testing.T) {
	r := openTestRepo(t)
	if _, err := Verify(HashObject(KindBlob, []byte("x")), KindBlob, []byte("y")); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Verify with a wrong hash: %v", err)
	}
	payload := []byte("\x00")
	h := HashObject(KindBlob, payload)
	o, err := Verify(h, KindBlob, payload)
	if err != nil {
		t.Fatal(err)
	}
	payload[0] = 1 // the caller's buffer is reused: the object is a copy
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PutVerified(Verified{}); err == nil {
		t.Fatal("a Batch took a zero Verified")
	}
	if err := b.PutVerified(o); err != nil {
		t.Fatal(err)
	}
	if n, size := b.Count(); n != 1 || size != 1 {
		t.Errorf("Count %d, %d; want 1, 1", n, size)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	kind, got, err := r.Get(h)
	if err != nil || kind != KindBlob || !bytes.Equal(got, []byte("\x00")) {
		t.Fatalf("stored %s %q, %v; want the blob verified", kind, got, err)
	}
}

func TestImportReplacesContent(t *testing.T) {
	r := openTestRepo(t)
	first := "$ORIGIN example.com.\n@ IN SOA ns1 host 1 2 3 4 5\nold IN A 192.0.2.1\nkeep IN A 192.0.2.2\n"
	res1, err := importString(t, r, "example.com.", "", first)
	if err != nil {
		t.Fatal(err)
	}
	second := "$ORIGIN example.com.\n@ IN SOA ns1 host 1 2 3 4 5\nkeep IN A 192.0.2.2\nnew IN A 192.0.2.3\n"
	res2, err := importString(t, r, "example.com.", "", second)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Changed || res2.Parent != res1.Commit || res2.Commit == res1.Commit {
		t.Fatalf("second import %+v; want a new commit on top of %s", res2, res1.Commit.Short())
	}
	_, blobs := treeIndex(t, r, res2.Tree)
	if _, ok := blobs["old A"]; ok {
		t.Error("the RRset removed from the file is still in the tree: import must replace, not add")
	}
	for _, k := range []string{"keep A", "new A", " SOA"} {
		if _, ok := blobs[k]; !ok {
			t.Errorf("%q missing from %v", k, blobs)
		}
	}
	_, payload, err := r.Get(res2.Commit)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommit(payload)
	if err != nil || len(c.Parents) != 1 || c.Parents[0] != res1.Commit || c.Tree != res2.Tree {
		t.Fatalf("commit %+v, %v", c, err)
	}
	if c.Author.Name != "Test" || c.Message != "import test.zone\n" {
		t.Errorf("author %q message %q", c.Author.Name, c.Message)
	}
	log, err := r.Reflog(BranchRef("example.com.", "main"))
	if err != nil || len(log) != 2 || log[1].Old != res1.Commit || log[1].New != res2.Commit ||
		log[1].Op != "commit" || log[1].Author != "Test <test@example.invalid>" || log[1].Message != "import test.zone" {
		t.Errorf("reflog %+v, %v", log, err)
	}
}

func TestImportNoOp(t *testing.T) {
	r := openTestRepo(t)
	text := "$ORIGIN example.com.\n@ IN SOA ns1 host 1 2 3 4 5\nwww IN A 192.0.2.1\n"
	res1, err := importString(t, r, "example.com.", "", text)
	if err != nil {
		t.Fatal(err)
	}
	// Same content, written differently: record order, case, a duplicate.
	same := "$ORIGIN example.com.\nWWW.example.com. IN A 192.0.2.1\nwww IN A 192.0.2.1\n@ IN SOA ns1 host 1 2 3 4 5\n"
	res2, err := importString(t, r, "example.com.", "", same)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Changed || res2.Commit != res1.Commit || res2.Tree != res1.Tree {
		t.Fatalf("no-op import %+v; want Changed=false at %s", res2, res1.Commit.Short())
	}
	if log, _ := r.Reflog(BranchRef("example.com.", "main")); len(log) != 1 {
		t.Errorf("a no-op import wrote a reflog entry: %+v", log)
	}
}

func TestImportSemantics(t *testing.T) {
	r := openTestRepo(t)
	text := `$ORIGIN example.com.
@ 600 IN SOA ns1 host 1 2 3 4 5
www 300 IN A 192.0.2.1
www 60 IN A 192.0.2.2
www IN A 192.0.2.1
x IN TYPE65280 \# 2 abcd
a.b.c IN TXT "deep"
`
	res, err := importString(t, r, "example.com.", "", text)
	if err != nil {
		t.Fatal(err)
	}
	trees, blobs := treeIndex(t, r, res.Tree)
	_, payload, _ := r.Get(blobs["www A"])
	b, err := DecodeBlob(payload)
	if err != nil {
		t.Fatal(err)
	}
	if b.TTL != 60 || len(b.RData) != 2 {
		t.Errorf("www A: TTL %d with %d records; want the lowest TTL 60 and the duplicate dropped", b.TTL, len(b.RData))
	}
	if _, ok := blobs["x TYPE65280"]; !ok {
		t.Errorf("unknown type not stored as TYPE65280: %v", blobs)
	}
	for _, p := range []string{"", "c", "c/b", "c/b/a", "www", "x"} {
		if _, ok := trees[p]; !ok {
			t.Errorf("tree %q missing (empty non-terminals get trees)", p)
		}
	}
	if res.RRsets != 4 || res.Blobs != 4 || res.Trees != 6 || res.Objects != 11 {
		t.Errorf("counts %+v", res)
	}
}

func TestImportCanceled(t *testing.T) {
	r := openTestRepo(t)
	var sb strings.Builder
	sb.WriteString("$ORIGIN example.com.\n")
	for i := 0; i < 10000; i++ {
		sb.WriteString("h")
		sb.WriteString(strings.Repeat("x", i%7))
		sb.WriteString(" IN A 192.0.2.1\n")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Import(ctx, ImportOptions{Zone: "example.com.", Source: strings.NewReader(sb.String())})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled import: %v", err)
	}
}

func TestImportReadOnly(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := importString(t, r, "example.com.", "", "@ IN A 192.0.2.1\n"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("import into a read-only handle: %v", err)
	}
}

// setRaw writes a raw key and value behind the package's back, to damage a
// repository on purpose.
func setRaw(t *testing.T, r *Repo, key, value []byte) {
	t.Helper()
	err := r.db.Update(func(txn *badger.Txn) error {
		if value == nil {
			return txn.Delete(key)
		}
		return txn.Set(key, value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFsckDetectsDamage(t *testing.T) {
	text := "$ORIGIN example.com.\n@ IN SOA ns1 host 1 2 3 4 5\nwww IN A 192.0.2.1\nmail IN MX 10 www\n"
	setup := func(t *testing.T) (*Repo, *ImportResult, map[string]Hash, map[string]Hash) {
		r := openTestRepo(t)
		res, err := importString(t, r, "example.com.", "", text)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Fsck(context.Background())
		if err != nil || !rep.OK() || rep.Objects != res.Objects+1 || rep.Refs != 2 {
			t.Fatalf("fresh repository: %+v, %v", rep, err)
		}
		trees, blobs := treeIndex(t, r, res.Tree)
		return r, res, trees, blobs
	}
	check := func(t *testing.T, r *Repo, kind string, h Hash, detail string) {
		t.Helper()
		rep, err := r.Fsck(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() {
			t.Fatal("fsck found nothing")
		}
		for _, p := range rep.Problems {
			if p.Kind == kind && p.Hash == h && strings.Contains(p.Detail, detail) && p.Ref == BranchRef("example.com.", "main") {
				return
			}
		}
		t.Errorf("problems %v; want %s of %s mentioning %q", rep.Problems, kind, h.Short(), detail)
	}

	t.Run("missing blob", func(t *testing.T) {
		r, _, trees, blobs := setup(t)
		setRaw(t, r, objKey(blobs["www A"]), nil)
		check(t, r, "missing", blobs["www A"], "tree "+trees["www"].Short())
	})
	t.Run("corrupted tree", func(t *testing.T) {
		r, _, trees, _ := setup(t)
		_, payload, _ := r.Get(trees["mail"])
		payload[len(payload)-1] ^= 0xff
		setRaw(t, r, objKey(trees["mail"]), encodeObjectValue(KindTree, payload))
		check(t, r, "hash mismatch", trees["mail"], "hashes to")
	})
	t.Run("undecodable value", func(t *testing.T) {
		r, res, _, _ := setup(t)
		setRaw(t, r, objKey(res.Commit), []byte("garbage without a kind"))
		check(t, r, "undecodable", res.Commit, "kind prefix")
	})
	t.Run("wrong kind", func(t *testing.T) {
		r, res, _, blobs := setup(t)
		// A commit whose tree is a blob: stored correctly hashed.
		c := Commit{Tree: blobs["www A"], Author: Signature{Name: "a", Email: "b"}, Committer: Signature{Name: "a", Email: "b"}}
		h, err := r.PutObject(KindCommit, c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.UpdateBranch("example.com.", "main", res.Commit, h, nil); err != nil {
			t.Fatal(err)
		}
		check(t, r, "wrong kind", blobs["www A"], "expects a tree")
	})
	t.Run("bad zone marker", func(t *testing.T) {
		r, _, _, _ := setup(t)
		setRaw(t, r, refKey(ZoneRef("example.com.")), make([]byte, 32))
		rep, err := r.Fsck(context.Background())
		if err != nil || rep.OK() || rep.Problems[0].Kind != "bad ref" {
			t.Errorf("report %+v, %v", rep, err)
		}
	})
	t.Run("unreachable is fine", func(t *testing.T) {
		r, _, _, _ := setup(t)
		if _, err := r.PutObject(KindBlob, []byte{1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		rep, err := r.Fsck(context.Background())
		if err != nil || !rep.OK() || rep.Unreachable != 1 {
			t.Errorf("report %+v, %v; want sound with 1 unreachable", rep, err)
		}
	})
}

// TestPutObjectNamesAndChecksKind: PutObject stores an object under its
// own hash (hashed once, verified by construction) and refuses a kind
// zonegit does not know.
func TestPutObjectNamesAndChecksKind(t *testing.T) {
	r := openTestRepo(t)
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutObject(Kind("bogus"), []byte("x")); err == nil {
		t.Fatal("PutObject accepted an unknown kind")
	}
	p := []byte("www.example.com. 300 IN A 192.0.2.1")
	h, err := b.PutObject(KindBlob, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if h != HashObject(KindBlob, p) {
		t.Fatalf("PutObject named it %s, want %s", h, HashObject(KindBlob, p))
	}
	kind, got, err := r.Get(h)
	if err != nil || kind != KindBlob || !bytes.Equal(got, p) {
		t.Fatalf("stored %s %q, %v", kind, got, err)
	}
}
