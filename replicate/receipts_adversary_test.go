package replicate_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// Attacks on the closure check's trust in what a pull received (receipts,
// kept trees, the comparisons linkTree made as trees arrived).

// TestAdversaryKilledParentAsBase: a killed pull left a commit of a zone
// the replica has no branch in, with its root tree and one of the two
// subtrees' blobs; its other blob is lost on the primary. The primary's
// next commit keeps that subtree and adds a name, and its walk and pack
// claim the replica needs only the new commit, tree and name. The pack
// stream's trees are compared as they arrive with the local parent's (the
// killed pull's) tree, and with no known tip in the zone the check takes
// that comparison (walk.Differ) for the new root tree: the unchanged
// subtree is skipped there, so the hole must still be found under the
// parent commit, which the check walks as missing. In every mode the
// branch fails naming the lost blob, no ref of the zone appears, and the
// replica is sound.
func TestAdversaryKilledParentAsBase(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		var lying atomic.Bool
		var tip repo.Hash
		var objs []obj
		lie := lieAboutRoot(&tip, &objs)
		p := newLiar(t, v0, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
			return lying.Load() && lie(w, r, body, truth)
		})
		full := openRepo(t, t.TempDir())
		c := newCrafted(t, full)
		const zone = "other.example."
		kept := c.blob("a.other.example.", 1)
		lost := c.blob("a.other.example.", 2)
		sub := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: kept}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "TXT", Hash: lost})
		root1 := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: sub})
		c1 := c.commit(zone, "main", root1)
		added := c.blob("b.other.example.", 3)
		bsub := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: added})
		root2 := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: sub}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "b", Hash: bsub})
		tip = c.commit(zone, "main", root2)
		copyWithout(t, full, p.repo, lost)
		for _, h := range []repo.Hash{tip, root2, bsub, added} {
			k, pl, err := full.Get(h)
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, obj{h, k, pl})
		}

		local := openRepo(t, t.TempDir())
		cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		if _, err := cl.PullWith(context.Background(), replicate.PullOptions{Zones: []string{"example.com."}}); err != nil {
			t.Fatal(err)
		}
		// What the killed pull left: the parent commit, its tree and
		// subtree, and one of the subtree's blobs.
		for _, h := range []repo.Hash{c1, root1, sub, kept} {
			k, pl, err := full.Get(h)
			if err != nil {
				t.Fatal(err)
			}
			if err := local.Put(h, k, pl); err != nil {
				t.Fatal(err)
			}
		}
		lying.Store(true)
		_, err := cl.PullWith(context.Background(), replicate.PullOptions{Zones: []string{zone}})
		wantFailed(t, err, map[string][]string{zone + "/main": {lost.String(), "missing"}})
		wantRefs(t, local, map[string]repo.Hash{"example.com./main": c.base})
		assertSound(t, local)
	})
}

// TestAdversarySharedObjectsFailedTarget: two branches share new objects;
// the one checked first (x) also reaches a blob the primary never
// delivers (left out of every pack, batch and GET answer). The check
// credits the shared objects to x, takes them back when x turns out
// incomplete, and credits them to y, which moves; x fails naming the blob.
// Per branch, y's Objects and Bytes are exactly what its closure adds to
// the replica, x's are zero, and the pull's totals are what it stored.
func TestAdversarySharedObjectsFailedTarget(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		var lost repo.Hash
		p := newLiar(t, v0, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
			return lieAbout(lost, func(obj) (obj, bool) { return obj{}, false }, "pack", "batch", "get")(w, r, body, truth)
		})
		c := newCrafted(t, p.repo)
		const zone = "example.com."
		shared := c.blob("s.example.com.", 7)
		sharedSub := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: shared})
		lost = c.blob("l.example.com.", 8)
		lostSub := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: lost})
		x := c.commit(zone, "x", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "l", Hash: lostSub}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: sharedSub}))
		y := c.commit(zone, "y", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: sharedSub}))

		local := openRepo(t, t.TempDir())
		cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		if _, err := cl.PullWith(context.Background(), replicate.PullOptions{Branches: []string{"main"}}); err != nil {
			t.Fatal(err)
		}
		res, err := cl.PullWith(context.Background(), replicate.PullOptions{})
		wantFailed(t, err, map[string][]string{zone + "/x": {lost.String(), "missing"}})
		wantRefs(t, local, map[string]repo.Hash{zone + "/main": c.base, zone + "/y": y})

		known := repotest.Closure(t, p.repo, c.base)
		size := func(hs map[repo.Hash]bool) (n int, b int64) {
			for h := range hs {
				if known[h] || h == lost {
					continue
				}
				_, pl, err := p.repo.Get(h)
				if err != nil {
					t.Fatal(err)
				}
				n++
				b += int64(len(pl))
			}
			return n, b
		}
		yObjs, yBytes := size(repotest.Closure(t, p.repo, y))
		allObjs, allBytes := size(closureWithout(t, p.repo, lost, x, y))
		for _, b := range res.Branches {
			switch b.Name {
			case "y":
				if b.Objects != yObjs || b.Bytes != yBytes {
					t.Errorf("y: %d objects, %d bytes; want %d, %d", b.Objects, b.Bytes, yObjs, yBytes)
				}
			case "x":
				if b.Objects != 0 || b.Bytes != 0 {
					t.Errorf("x (failed): %d objects, %d bytes; want 0", b.Objects, b.Bytes)
				}
			}
		}
		if res.Objects != allObjs || res.Bytes != allBytes {
			t.Errorf("pull: %d objects, %d bytes; want %d, %d", res.Objects, res.Bytes, allObjs, allBytes)
		}
		assertSound(t, local)
	})
}

// closureWithout is repotest.Closure of hs in r, not descending into (nor
// counting) skip.
func closureWithout(t *testing.T, r repo.Reader, skip repo.Hash, hs ...repo.Hash) map[repo.Hash]bool {
	t.Helper()
	seen := map[repo.Hash]bool{}
	stack := append([]repo.Hash(nil), hs...)
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] || h == skip {
			continue
		}
		seen[h] = true
		kind, payload, err := r.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		links, err := repo.Links(kind, payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			stack = append(stack, l.Hash)
		}
	}
	return seen
}

// TestAdversaryCutPackCounts: every pack stream ends (without its count
// trailer, as an aborted one does) after a third of its frames, so most of
// two zones, a second branch sharing most of main's objects, an annotated
// tag and a pin arrive by the batch or GET rounds after the stream.
// The replica converges, and the per-ref Objects and Bytes add up to
// exactly what the pull stored, which is the union of the closures: each
// object received in the stream or a later round is credited once, to
// the first complete target that reaches it.
func TestAdversaryCutPackCounts(t *testing.T) {
	var cuts atomic.Int64
	p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
		if r.URL.Path != wire.PackPath {
			return false
		}
		frames, ok := realFrames(truth, r, body)
		if !ok {
			return false
		}
		cuts.Add(1)
		w.Header().Set("Content-Type", wire.ObjectStreamContentType)
		w.WriteHeader(http.StatusOK)
		for _, o := range frames[:len(frames)/3] {
			_, _ = w.Write(o.frame())
		}
		return true
	})
	main := mustSynthetic(t, p.repo, "example.com.", "main", 40)
	other := mustSynthetic(t, p.repo, "other.test.", "main", 20)
	dev, err := repotest.SetA(p.repo, "example.com.", "main", []string{"dev"}, 300, [4]byte{192, 0, 2, 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.repo.UpdateBranch("example.com.", "dev", repo.ZeroHash, dev, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.repo.UpdateBranch("example.com.", "main", dev, main, nil); err != nil {
		t.Fatal(err)
	}
	sig := repotest.Author
	tag, err := p.repo.PutObject(repo.KindTag, (&repo.Tag{Object: main, Type: repo.KindCommit, Name: "v1", Tagger: sig, Message: "v1\n"}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.repo.UpdateTag("example.com.", "v1", repo.ZeroHash, tag, nil); err != nil {
		t.Fatal(err)
	}
	pinned, err := repotest.SetA(p.repo, "other.test.", "main", []string{"pin"}, 300, [4]byte{192, 0, 2, 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.repo.UpdateBranch("other.test.", "main", pinned, other, nil); err != nil {
		t.Fatal(err)
	}

	local := openRepo(t, t.TempDir())
	cl := newClient(t, p.url(), local, nil)
	res, err := cl.PullWith(context.Background(), replicate.PullOptions{Pins: map[string]string{"other.test./pinned": pinned.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if cuts.Load() == 0 {
		t.Fatal("no pack stream was cut")
	}
	all := repotest.Closure(t, p.repo, main, other, dev, tag, pinned)
	var wantBytes int64
	for h := range all {
		_, pl, err := p.repo.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		wantBytes += int64(len(pl))
	}
	var objs int
	var bytes int64
	for _, b := range res.Branches {
		if b.Err != nil {
			t.Errorf("%s/%s: %v", b.Zone, b.Name, b.Err)
		}
		objs += b.Objects
		bytes += b.Bytes
	}
	if res.Objects != len(all) || res.Bytes != wantBytes {
		t.Errorf("pull stored %d objects, %d bytes; the closures hold %d, %d", res.Objects, res.Bytes, len(all), wantBytes)
	}
	if objs != res.Objects || bytes != res.Bytes {
		t.Errorf("refs credited %d objects, %d bytes; the pull stored %d, %d", objs, bytes, res.Objects, res.Bytes)
	}
	if h, err := local.Branch("other.test.", "pinned"); err != nil || h != pinned {
		t.Errorf("pin: %s, %v", h, err)
	}
	assertSound(t, local)
}
