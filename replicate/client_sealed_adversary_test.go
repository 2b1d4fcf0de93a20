package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// Attacks on the sealed first pull (verify.go, seal): a first pull of one
// root by pack into a store without objects is proven complete by its
// stream, without the closure walk. Each attack pulls the same thing
// twice: into a store as the attack leaves it (sealed, when the pull
// qualifies), and into the same store holding one unrelated object too,
// which the walk then checks. Both must agree on everything a caller
// sees: the refs, the replica's soundness, which refs failed and why,
// and the per-branch Objects and Bytes.

// pullOutcome is what a caller sees of one pull.
type pullOutcome struct {
	refs     map[string]string
	failed   map[string]string // ref -> error text
	branches map[string][2]int64
	objects  int
	bytes    int64
	proofs   int // closures proven by the stream
}

// pullOnce pulls opts into local after prepare and records the outcome;
// the replica must be sound whatever happened.
func pullOnce(t *testing.T, url string, local *repo.Repo, opts replicate.PullOptions, mod func(*replicate.ClientOptions)) pullOutcome {
	t.Helper()
	log := &proofLog{}
	c := newClient(t, url, local, func(o *replicate.ClientOptions) {
		o.RetryAttempts = 1
		o.Logger = log
		if mod != nil {
			mod(o)
		}
	})
	res, err := c.PullWith(context.Background(), opts)
	out := pullOutcome{refs: localRefs(t, local), failed: map[string]string{}, branches: map[string][2]int64{}, proofs: log.count()}
	tags, terr := local.Tags("")
	if terr != nil {
		t.Fatal(terr)
	}
	for _, r := range tags {
		out.refs["tag:"+r.Zone+"/"+r.Name] = r.Hash.String()
	}
	if err != nil {
		var pe *replicate.PullError
		if !errors.As(err, &pe) {
			t.Fatalf("pull: %v", err)
		}
		for _, f := range pe.Failed {
			out.failed[f.Zone+"/"+f.Name] = f.Err.Error()
		}
	}
	if res == nil {
		t.Fatal("no result")
	}
	out.objects, out.bytes = res.Objects, res.Bytes
	var sumO int
	var sumB int64
	for _, b := range res.Branches {
		key := b.Zone + "/" + b.Name
		if b.Tag {
			key = "tag:" + key
		}
		out.branches[key] = [2]int64{int64(b.Objects), b.Bytes}
		sumO += b.Objects
		sumB += b.Bytes
	}
	// Each object stored is credited to at most one branch.
	if sumO > res.Objects || sumB > res.Bytes {
		t.Errorf("branches credited %d objects/%d bytes in all, the pull stored %d/%d: %+v", sumO, sumB, res.Objects, res.Bytes, res.Branches)
	}
	assertSound(t, local)
	return out
}

// strayObject puts one object no ref reaches, so the store is not empty
// and the pull's closures are walked.
func strayObject(t *testing.T, r *repo.Repo) {
	t.Helper()
	if _, err := r.PutObject(repo.KindBlob, mustBlob(t, "stray.invalid.", 7)); err != nil {
		t.Fatal(err)
	}
}

// sealedVsWalked runs the pull into a fresh store prepared by prepare
// (sealed when it qualifies) and into one prepared the same way plus a
// stray object (walked), and fails on any difference a caller could see.
// wantProof says whether the first pull must be proven by its stream.
func sealedVsWalked(t *testing.T, url string, prepare func(*repo.Repo), opts replicate.PullOptions, mod func(*replicate.ClientOptions), wantProof bool) (sealed, walked pullOutcome) {
	t.Helper()
	return compareSealed(t, url, prepare, opts, mod, &wantProof)
}

// sealedVsWalkedAnyProof is sealedVsWalked for a pull the stream may or
// may not prove.
func sealedVsWalkedAnyProof(t *testing.T, url string, opts replicate.PullOptions) (sealed, walked pullOutcome) {
	t.Helper()
	return compareSealed(t, url, nil, opts, nil, nil)
}

func compareSealed(t *testing.T, url string, prepare func(*repo.Repo), opts replicate.PullOptions, mod func(*replicate.ClientOptions), wantProof *bool) (sealed, walked pullOutcome) {
	t.Helper()
	a := openRepo(t, t.TempDir())
	if prepare != nil {
		prepare(a)
	}
	sealed = pullOnce(t, url, a, opts, mod)
	b := openRepo(t, t.TempDir())
	if prepare != nil {
		prepare(b)
	}
	strayObject(t, b)
	walked = pullOnce(t, url, b, opts, mod)
	if walked.proofs != 0 {
		t.Fatalf("a store holding an object was proven by the stream")
	}
	if wantProof != nil && *wantProof != (sealed.proofs > 0) {
		t.Errorf("proofs by the stream: %d, want proven %v", sealed.proofs, *wantProof)
	}
	if d := diffMaps(sealed.refs, walked.refs); d != "" {
		t.Errorf("refs differ (sealed vs walked): %s", d)
	}
	if d := diffMaps(sealed.failed, walked.failed); d != "" {
		t.Errorf("failures differ (sealed vs walked): %s", d)
	}
	if d := diffMaps(sealed.branches, walked.branches); d != "" {
		t.Errorf("per-branch Objects/Bytes differ (sealed vs walked): %s", d)
	}
	if sealed.objects != walked.objects || sealed.bytes != walked.bytes {
		t.Errorf("pull totals differ: sealed %d/%d, walked %d/%d", sealed.objects, sealed.bytes, walked.objects, walked.bytes)
	}
	return sealed, walked
}

func diffMaps[V comparable](a, b map[string]V) string {
	var ds []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			ds = append(ds, fmt.Sprintf("%s: %v vs %v", k, v, w))
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			ds = append(ds, fmt.Sprintf("%s: (none) vs %v", k, w))
		}
	}
	sort.Strings(ds)
	return strings.Join(ds, "; ")
}

// TestSealedAdversaryKnownRootOtherZone: the store holds no object, only
// a tag (zone stale.test.; a branch would have stored HEAD's symref)
// naming a commit Y it lacks. The primary has example.com./main at X and
// other.test./main at Y, whose trees share a subtree. Y is a local tip,
// so it is no root of the pull: X is the only one. other.test./main is
// checked in later rounds by the walk, which reaches the shared subtree,
// stored by this pull; it was credited to example.com./main, and must not
// be credited again. (Sealed, the proof credited example.com./main with
// every object without marking one, and other.test./main was credited
// the shared subtree a second time: the branches summed to more than the
// pull stored. Such a pull is not sealed now.)
func TestSealedAdversaryKnownRootOtherZone(t *testing.T) {
	p := newPrimary(t, false, nil)
	c := &crafted{t: t, r: p.repo}
	shared := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("s.example.com.", 1)})
	x := c.commit("example.com.", "main", c.tree(
		repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: shared},
		repo.TreeEntry{Kind: repo.EntrySubtree, Name: "x", Hash: c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("x.example.com.", 2)})}))
	y := c.commit("other.test.", "main", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: shared}))
	refOnly := func(r *repo.Repo) {
		if err := r.UpdateTag("stale.test.", "v1", repo.ZeroHash, y, nil); err != nil {
			t.Fatal(err)
		}
	}
	opts := replicate.PullOptions{Zones: []string{"example.com.", "other.test."}}
	sealed, _ := sealedVsWalked(t, p.url(), refOnly, opts, nil, false)
	if sealed.refs["example.com./main"] != x.String() || sealed.refs["other.test./main"] != y.String() {
		t.Fatalf("refs %v", sealed.refs)
	}
	// Y adds its commit and root tree; the rest is X's.
	yObjs := closureWithout(t, p.repo, repo.ZeroHash, y)
	xObjs := repotest.Closure(t, p.repo, x)
	n := 0
	for h := range yObjs {
		if !xObjs[h] {
			n++
		}
	}
	if got := sealed.branches["other.test./main"][0]; got != int64(n) {
		t.Errorf("other.test./main credited %d objects, its closure adds %d", got, n)
	}
}

// liarFunc is a newLiar lie.
type liarFunc = func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool

// rewritePack answers every pack request with the truth's frames passed
// through edit; trailer false ends the stream without its count trailer,
// as an aborted one does.
func rewritePack(edit func(frames []obj) []obj, trailer bool) liarFunc {
	return func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
		if r.URL.Path != wire.PackPath {
			return false
		}
		frames, ok := realFrames(truth, r, body)
		if !ok {
			return false
		}
		frames = edit(frames)
		if trailer {
			writeStream(w, frames)
			return true
		}
		w.Header().Set("Content-Type", wire.ObjectStreamContentType)
		w.WriteHeader(http.StatusOK)
		for _, o := range frames {
			_, _ = w.Write(o.frame())
		}
		return true
	}
}

// commitObj commits a crafted commit (any parents, in order) and points
// zone/branch at it.
func (c *crafted) commitObj(zone, branch string, tree repo.Hash, when int64, parents ...repo.Hash) repo.Hash {
	c.t.Helper()
	sig := repotest.Author
	sig.When = when
	h := c.put(repo.KindCommit, (&repo.Commit{Tree: tree, Parents: parents, Author: sig, Committer: sig, Message: "crafted\n"}).Encode())
	old, err := c.r.Branch(zone, branch)
	if err != nil && !errors.Is(err, repo.ErrNotFound) {
		c.t.Fatal(err)
	}
	if err := c.r.UpdateBranch(zone, branch, old, h, nil); err != nil {
		c.t.Fatal(err)
	}
	return h
}

// nameTree is a subtree holding one A record for owner.
func (c *crafted) nameTree(owner string, ip byte) repo.Hash {
	c.t.Helper()
	return c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob(owner, ip)})
}

// TestSealedAdversaryStreams: odd but honest histories, and streams that
// lie about them. Each is pulled alone into an empty store (sealed when
// the stream proves it) and into a store holding a stray object (walked):
// refs, failures, soundness and per-branch counts agree, and a lie is
// never proven.
func TestSealedAdversaryStreams(t *testing.T) {
	const zone = "example.com."
	only := replicate.PullOptions{Zones: []string{zone}}
	type setup struct {
		opts      replicate.PullOptions
		lie       liarFunc
		wantProof bool
		wantRef   map[string]repo.Hash // refs after the pull (nil: none)
		wantFail  []string             // refs that fail
	}
	cases := map[string]func(c *crafted) setup{
		// A merge whose parents share history (one is the other's
		// parent) and trees (the same subtree under every commit), a
		// commit whose tree is its parent's, and a tree naming one blob
		// and one subtree under two names each.
		"merge-and-shared-trees": func(c *crafted) setup {
			s := c.nameTree("s.example.com.", 1)
			b := c.commitObj(zone, "b", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: s}), 100)
			bt := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: s}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "t", Hash: s})
			same := c.commitObj(zone, "b", bt, 150, b)
			blob := c.blob("x.example.com.", 2)
			xt := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: blob}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "AAAA", Hash: blob})
			a := c.commitObj(zone, "a", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: s}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "x", Hash: xt}), 200, same)
			a2 := c.commitObj(zone, "a", bt, 250, a) // back to a parent's parent's tree
			m := c.commitObj(zone, "main", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: s}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "x", Hash: xt}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "y", Hash: s}), 300, a2, same, b)
			return setup{opts: replicate.PullOptions{Zones: []string{zone}, Branches: []string{"main"}}, wantProof: true, wantRef: map[string]repo.Hash{zone + "/main": m}}
		},
		// The same parent twice.
		"duplicate-parent": func(c *crafted) setup {
			p := c.commitObj(zone, "p", c.nameTree("p.example.com.", 1), 100)
			m := c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200, p, p)
			return setup{opts: replicate.PullOptions{Zones: []string{zone}, Branches: []string{"main"}}, wantProof: true, wantRef: map[string]repo.Hash{zone + "/main": m}}
		},
		// The root sent again after everything: a repeat stops the
		// stream, and the walk checks what it brought.
		"root-twice": func(c *crafted) setup {
			m := c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200)
			return setup{opts: only, lie: rewritePack(func(f []obj) []obj { return append(f, f[0]) }, true), wantRef: map[string]repo.Hash{zone + "/main": m}}
		},
		// Everything, then an object nobody linked.
		"extra-after-everything": func(c *crafted) setup {
			m := c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200)
			stray := c.blob("stray.example.com.", 9)
			_, pl, err := c.r.Get(stray)
			if err != nil {
				c.t.Fatal(err)
			}
			return setup{opts: only, lie: rewritePack(func(f []obj) []obj { return append(f, obj{stray, repo.KindBlob, pl}) }, true), wantRef: map[string]repo.Hash{zone + "/main": m}}
		},
		// Everything, but no count trailer: the primary may have
		// aborted; nothing is proven, the walk finds it complete.
		"no-trailer-after-everything": func(c *crafted) setup {
			m := c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200)
			return setup{opts: only, lie: rewritePack(func(f []obj) []obj { return f }, false), wantRef: map[string]repo.Hash{zone + "/main": m}}
		},
		// A blob before the tree that links it: not asked for yet.
		"sent-before-wanted": func(c *crafted) setup {
			m := c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200)
			return setup{opts: only, lie: rewritePack(func(f []obj) []obj {
				n := len(f)
				return append(append(append([]obj{}, f[:n-2]...), f[n-1]), f[n-2])
			}, true), wantRef: map[string]repo.Hash{zone + "/main": m}}
		},
		// The root as another kind: a branch at a tree.
		"root-is-a-tree": func(c *crafted) setup {
			tr := c.nameTree("m.example.com.", 2)
			if err := c.r.UpdateBranch(zone, "main", repo.ZeroHash, tr, nil); err != nil {
				c.t.Fatal(err)
			}
			return setup{opts: only, wantFail: []string{zone + "/main"}}
		},
		// A commit whose tree is a blob, and a tree whose subtree is a
		// blob: the stream refuses each as it comes.
		"tree-is-a-blob": func(c *crafted) setup {
			c.commitObj(zone, "main", c.blob("m.example.com.", 2), 200)
			return setup{opts: only, wantFail: []string{zone + "/main"}}
		},
		"subtree-is-a-blob": func(c *crafted) setup {
			c.commitObj(zone, "main", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "m", Hash: c.blob("m.example.com.", 2)}), 200)
			return setup{opts: only, wantFail: []string{zone + "/main"}}
		},
		// A leaf that is a symref (HEAD's kind), and a branch at one.
		"leaf-is-a-symref": func(c *crafted) setup {
			sym := c.put(repo.KindSymref, []byte("refs/zonegit/zones/example.com./heads/main"))
			c.commitObj(zone, "main", c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: sym}), 200)
			return setup{opts: only, wantFail: []string{zone + "/main"}}
		},
		"branch-at-a-symref": func(c *crafted) setup {
			sym := c.put(repo.KindSymref, []byte("refs/zonegit/zones/example.com./heads/main"))
			if err := c.r.UpdateBranch(zone, "main", repo.ZeroHash, sym, nil); err != nil {
				c.t.Fatal(err)
			}
			return setup{opts: only, wantFail: []string{zone + "/main"}}
		},
		// A parent named by the zero hash, and a leaf.
		"zero-parent": func(c *crafted) setup {
			c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200, repo.ZeroHash)
			return setup{opts: only, wantFail: []string{zone + "/main"}}
		},
		"zero-leaf": func(c *crafted) setup {
			c.commitObj(zone, "main", c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: repo.ZeroHash}), 200)
			return setup{opts: only, wantFail: []string{zone + "/main"}}
		},
		// The primary does not know the root (404 for the pack).
		"pack-404": func(c *crafted) setup {
			c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200)
			return setup{opts: only, lie: func(w http.ResponseWriter, r *http.Request, _ []byte, _ http.Handler) bool {
				if r.URL.Path != wire.PackPath {
					return false
				}
				http.Error(w, "root unknown", http.StatusNotFound)
				return true
			}, wantFail: []string{zone + "/main"}}
		},
		// Two branches and a pin at the one root: one of them is
		// credited with everything, as the walk credits.
		"three-targets-one-root": func(c *crafted) setup {
			m := c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200)
			if err := c.r.UpdateBranch(zone, "copy", repo.ZeroHash, m, nil); err != nil {
				c.t.Fatal(err)
			}
			return setup{opts: replicate.PullOptions{Zones: []string{zone}, Pins: map[string]string{"other.test./pinned": m.String()}}, wantProof: true,
				wantRef: map[string]repo.Hash{zone + "/main": m, zone + "/copy": m, "other.test./pinned": m}}
		},
		// The provider's apply: exactly one pinned branch.
		"exactly-one-pin": func(c *crafted) setup {
			p := c.commitObj(zone, "main", c.nameTree("p.example.com.", 1), 100)
			c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200, p)
			return setup{opts: replicate.PullOptions{}.Exactly(map[string]string{zone + "/main": p.String()}), wantProof: true, wantRef: map[string]repo.Hash{zone + "/main": p}}
		},
		// A branch and a tag at the same commit: the root is asked for
		// as a commit or a tag, which nothing proves.
		"branch-and-tag-one-root": func(c *crafted) setup {
			m := c.commitObj(zone, "main", c.nameTree("m.example.com.", 2), 200)
			if err := c.r.UpdateTag(zone, "v1", repo.ZeroHash, m, nil); err != nil {
				c.t.Fatal(err)
			}
			return setup{opts: only, wantRef: map[string]repo.Hash{zone + "/main": m, "tag:" + zone + "/v1": m}}
		},
		// Only an annotated tag.
		"annotated-tag-only": func(c *crafted) setup {
			m := c.put(repo.KindCommit, (&repo.Commit{Tree: c.nameTree("m.example.com.", 2), Author: repotest.Author, Committer: repotest.Author, Message: "m\n"}).Encode())
			tag := c.put(repo.KindTag, (&repo.Tag{Object: m, Type: repo.KindCommit, Name: "v1", Tagger: repotest.Author, Message: "v1\n"}).Encode())
			if err := c.r.UpdateTag(zone, "v1", repo.ZeroHash, tag, nil); err != nil {
				c.t.Fatal(err)
			}
			return setup{opts: only, wantRef: map[string]repo.Hash{"tag:" + zone + "/v1": tag}}
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			var lie liarFunc
			p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				return lie != nil && lie(w, r, body, truth)
			})
			st := build(&crafted{t: t, r: p.repo})
			lie = st.lie
			sealed, _ := sealedVsWalked(t, p.url(), nil, st.opts, nil, st.wantProof)
			want := map[string]string{}
			for k, h := range st.wantRef {
				want[k] = h.String()
			}
			if d := diffMaps(sealed.refs, want); d != "" {
				t.Errorf("refs (got vs want): %s", d)
			}
			var failed []string
			for k := range sealed.failed {
				failed = append(failed, k)
			}
			sort.Strings(failed)
			sort.Strings(st.wantFail)
			if strings.Join(failed, ",") != strings.Join(st.wantFail, ",") {
				t.Errorf("failed %v, want %v: %v", failed, st.wantFail, sealed.failed)
			}
		})
	}
}

// bigBlob is a blob of about n MiB (records of 64000 bytes, each filled
// with its own byte pattern), so that a pull's batch flushes after it.
func (c *crafted) bigBlob(owner string, mib int) repo.Hash {
	c.t.Helper()
	var rd [][]byte
	for i := 0; len(rd)*64000 < mib<<20; i++ {
		r := make([]byte, 64000)
		for j := range r {
			r[j] = byte(i + j/251)
		}
		r[0], r[1] = byte(i>>8), byte(i)
		rd = append(rd, r)
	}
	p, err := (&repo.Blob{Owner: owner, Class: 1, Type: 65280, TTL: 300, RData: rd}).Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return c.put(repo.KindBlob, p)
}

// TestSealedAdversaryFlushedParentAsBase: the pack stream is reordered so
// that a commit arrives after its parent was stored and flushed (a blob
// of 17 MiB came between, and the pull is made to flush its batch at
// 16 MiB, as pulls once did mid-stream): the parent is then local
// while the stream runs, and the commit's tree is compared with the
// parent's as it arrives (linkCommit, linkTree), wanting only what
// differs. That is sound only because the parent's tree came in this
// stream and wanted its own entries: the stream is still proven, and the
// walk agrees. When the stream also leaves out a blob only the parent's
// tree names (and batch and GET refuse it), nothing is proven and the
// branch fails, as walked.
func TestSealedAdversaryFlushedParentAsBase(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a 17 MiB blob around")
	}
	const zone = "example.com."
	replicate.FlushMidStream(t, 16<<20)
	for _, lose := range []bool{false, true} {
		t.Run(map[bool]string{false: "complete", true: "blob-lost"}[lose], func(t *testing.T) {
			var lie liarFunc
			p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				return lie != nil && lie(w, r, body, truth)
			})
			c := &crafted{t: t, r: p.repo}
			big := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "TYPE65280", Hash: c.bigBlob("big.example.com.", 17)})
			sBlob := c.blob("s.example.com.", 1)
			s := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: sBlob})
			bt := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "big", Hash: big}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: s})
			b := c.commitObj(zone, "b", bt, 100)
			aSub := c.nameTree("a.example.com.", 2)
			at := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: aSub}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "big", Hash: big}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: s})
			a := c.commitObj(zone, "a", at, 200, b)
			mt := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: aSub}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "big", Hash: big})
			m := c.commitObj(zone, "main", mt, 300, a, b)
			order := []repo.Hash{m, b, bt, big, c.blobOf(big), s, sBlob, a, at, aSub, c.blobOf(aSub), mt}
			if lose {
				order = slices.DeleteFunc(order, func(h repo.Hash) bool { return h == sBlob })
			}
			var frames []obj
			for _, h := range order {
				k, pl, err := p.repo.Get(h)
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, obj{h, k, pl})
			}
			gone := lieAbout(sBlob, func(obj) (obj, bool) { return obj{}, false }, "batch", "get")
			lie = func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				if r.URL.Path == wire.PackPath {
					writeStream(w, frames)
					return true
				}
				return lose && gone(w, r, body, truth)
			}
			opts := replicate.PullOptions{Zones: []string{zone}, Branches: []string{"main"}}
			sealed, _ := sealedVsWalked(t, p.url(), nil, opts, nil, !lose)
			if lose {
				if _, ok := sealed.failed[zone+"/main"]; !ok || len(sealed.refs) != 0 {
					t.Fatalf("a lost blob: refs %v, failed %v", sealed.refs, sealed.failed)
				}
				return
			}
			if sealed.refs[zone+"/main"] != m.String() {
				t.Fatalf("refs %v, failed %v", sealed.refs, sealed.failed)
			}
			if n := len(repotest.Closure(t, p.repo, m)); sealed.branches[zone+"/main"][0] != int64(n) {
				t.Errorf("main credited %d objects, its closure holds %d", sealed.branches[zone+"/main"][0], n)
			}
		})
	}
}

// blobOf returns the one leaf of a name tree.
func (c *crafted) blobOf(tree repo.Hash) repo.Hash {
	c.t.Helper()
	_, pl, err := c.r.Get(tree)
	if err != nil {
		c.t.Fatal(err)
	}
	tr, err := repo.DecodeTree(pl)
	if err != nil || len(tr.Entries) != 1 {
		c.t.Fatalf("tree %s: %v", tree.Short(), err)
	}
	return tr.Entries[0].Hash
}

// copyOpenStore copies the files of an open store as they are now, as a
// killed process leaves them (its writes are in the files, nothing was
// closed or compacted), except the directory lock.
func copyOpenStore(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		if err := copySparse(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// copySparse copies a file's data regions only (the value log is
// preallocated to 512 MiB, nearly all of it a hole), at the same offsets
// and to the same size.
func copySparse(src, dst string) error {
	const seekData, seekHole = 3, 4 // lseek(2) SEEK_DATA, SEEK_HOLE
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	size := fi.Size()
	for pos := int64(0); pos < size; {
		start, err := in.Seek(pos, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // only a hole is left
			}
			if !errors.Is(err, syscall.EINVAL) {
				_ = out.Close()
				return err
			}
			start = pos // no SEEK_DATA here: copy everything
		}
		end, err := in.Seek(start, seekHole)
		if err != nil {
			end = size
		}
		if _, err := io.Copy(io.NewOffsetWriter(out, start), io.NewSectionReader(in, start, end-start)); err != nil {
			_ = out.Close()
			return err
		}
		pos = end
	}
	if err := out.Truncate(size); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// TestSealedAdversaryKilledPullLeftovers: a pull killed after its batch
// flushed leaves objects in the store's write-ahead log only (no table
// was written, nothing closed). Opened again, the store must count them
// (HasObjects): the next pull of the branch is not proven by its stream
// but walked, and converges; with no ref to tell the primary about, it
// fetches the whole closure again, and credits the branch with all it
// stored.
func TestSealedAdversaryKilledPullLeftovers(t *testing.T) {
	p := newPrimary(t, false, nil)
	tip := mustSynthetic(t, p.repo, "example.com.", "main", 30)
	closure := repotest.Closure(t, p.repo, tip)

	dir := t.TempDir()
	killed, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = killed.Close() })
	b, err := killed.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for h := range closure {
		k, pl, err := p.repo.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		if k == repo.KindBlob && left%2 == 1 {
			left++
			continue // half the blobs never came
		}
		if k == repo.KindBlob {
			left++
		}
		if err := b.Put(h, k, pl); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	stored, err := localObjectCount(killed)
	if err != nil {
		t.Fatal(err)
	}
	local := openRepo(t, copyOpenStore(t, dir))
	has, err := local.HasObjects()
	if err != nil {
		t.Fatal(err)
	}
	if !has {
		t.Fatal("a store holding a killed pull's objects in its log says it holds none")
	}
	out := pullOnce(t, p.url(), local, replicate.PullOptions{}, nil)
	if out.proofs != 0 {
		t.Fatal("a pull into a store with a killed pull's objects was proven by its stream")
	}
	if out.refs["example.com./main"] != tip.String() || len(out.failed) != 0 {
		t.Fatalf("refs %v, failed %v", out.refs, out.failed)
	}
	if out.objects != len(closure) || out.branches["example.com./main"][0] != int64(len(closure)) {
		t.Errorf("stored %d, credited %d; the closure holds %d", out.objects, out.branches["example.com./main"][0], len(closure))
	}
	if stored == 0 || stored >= len(closure) {
		t.Fatalf("the killed pull left %d of %d objects", stored, len(closure))
	}
}

func localObjectCount(r *repo.Repo) (int, error) {
	n := 0
	err := r.ForEachObject(func(repo.Hash, repo.Kind, []byte) error {
		n++
		return nil
	})
	return n, err
}

// randomHistory crafts a small random history on example.com./main: a
// pool of blobs (one of them, sometimes, undecodable), trees over them
// that share subtrees, name one object under several names and, now and
// then, link an object as the wrong kind (a subtree that is a blob, a
// leaf that is a tree), and commits with zero to three parents (repeats
// allowed; now and then one that is no commit) and trees that are, now
// and then, a parent's. It returns the tip and every object it made.
func randomHistory(c *crafted, rng *rand.Rand) (repo.Hash, []repo.Hash) {
	const zone = "example.com."
	var all, blobs, trees []repo.Hash
	for i := range 4 + rng.IntN(4) {
		h := c.blob(fmt.Sprintf("n%d.example.com.", i), byte(i))
		if rng.IntN(12) == 0 {
			h = c.put(repo.KindBlob, []byte("\x01not a wire-format owner name"))
		}
		blobs = append(blobs, h)
	}
	all = append(all, blobs...)
	pick := func(hs []repo.Hash) repo.Hash { return hs[rng.IntN(len(hs))] }
	leafNames := []string{"A", "AAAA", "TXT", "MX"}
	subNames := []string{"a", "b", "c", "d", "www"}
	for range 5 + rng.IntN(6) {
		var es []repo.TreeEntry
		for _, n := range leafNames[:rng.IntN(len(leafNames)+1)] {
			h := pick(blobs)
			if len(trees) > 0 && rng.IntN(25) == 0 {
				h = pick(trees) // a leaf that is a tree
			}
			es = append(es, repo.TreeEntry{Kind: repo.EntryLeaf, Name: n, Hash: h})
		}
		if len(trees) > 0 {
			for _, n := range subNames[:rng.IntN(len(subNames)+1)] {
				h := pick(trees)
				if rng.IntN(25) == 0 {
					h = pick(blobs) // a subtree that is a blob
				}
				es = append(es, repo.TreeEntry{Kind: repo.EntrySubtree, Name: n, Hash: h})
			}
		}
		if len(es) == 0 {
			es = append(es, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: pick(blobs)})
		}
		trees = append(trees, c.tree(es...))
	}
	all = append(all, trees...)
	var commits []repo.Hash
	commitTree := map[repo.Hash]repo.Hash{}
	var tip repo.Hash
	for i := range 1 + rng.IntN(5) {
		var parents []repo.Hash
		for range rng.IntN(min(len(commits), 3) + 1) {
			parents = append(parents, pick(commits))
		}
		if rng.IntN(20) == 0 {
			parents = append(parents, pick(trees)) // a parent that is a tree
		}
		tree := trees[len(trees)-1-rng.IntN(3)]
		if len(parents) > 0 && rng.IntN(4) == 0 {
			if t, ok := commitTree[parents[0]]; ok {
				tree = t // a parent's tree
			}
		}
		if rng.IntN(30) == 0 {
			tree = pick(blobs) // a tree that is a blob
		}
		sig := repotest.Author
		sig.When = int64(100 + i*10 - rng.IntN(15)) // clocks that sometimes run backwards
		tip = c.put(repo.KindCommit, (&repo.Commit{Tree: tree, Parents: parents, Author: sig, Committer: sig, Message: fmt.Sprintf("c%d\n", i)}).Encode())
		commits = append(commits, tip)
		commitTree[tip] = tree
	}
	all = append(all, commits...)
	if err := c.r.UpdateBranch(zone, "main", repo.ZeroHash, tip, nil); err != nil {
		c.t.Fatal(err)
	}
	return tip, all
}

// randomStreamLie edits the truth's pack frames the same way for every
// request of one seed: swaps two frames, drops one, repeats one, appends
// one of the history's objects the stream may or may not owe, or ends
// without the count trailer; or tells the truth.
type randomStreamLie struct {
	seed uint64
	objs []obj // objects the lie may add
}

func (l randomStreamLie) lie(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
	if r.URL.Path != wire.PackPath {
		return false
	}
	rng := rand.New(rand.NewPCG(l.seed, 7))
	trailer := true
	edit := func(f []obj) []obj {
		if len(f) == 0 {
			return f
		}
		switch rng.IntN(7) {
		case 0:
			i, j := rng.IntN(len(f)), rng.IntN(len(f))
			f[i], f[j] = f[j], f[i]
		case 1:
			i := rng.IntN(len(f))
			f = slices.Delete(f, i, i+1)
		case 2:
			i, j := rng.IntN(len(f)), rng.IntN(len(f)+1)
			f = slices.Insert(f, j, f[i])
		case 3:
			f = append(f, l.objs[rng.IntN(len(l.objs))])
		case 4:
			trailer = false
		}
		return f
	}
	frames, ok := realFrames(truth, r, body)
	if !ok {
		return false
	}
	frames = edit(frames)
	return rewritePack(func([]obj) []obj { return frames }, trailer)(w, r, body, truth)
}

// TestSealedAdversaryRandom: random small histories (wrong kinds,
// undecodable objects, repeated parents, shared and reused trees) behind
// random lies of the pack stream, with batch and GET telling the truth.
// The pull into an empty store (sealed when the stream proves it) and the
// walked one agree on everything a caller sees, the replica is sound, and
// when the branch moves its closure is exactly the primary's.
func TestSealedAdversaryRandom(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	proven := 0
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var lie liarFunc
			p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				return lie != nil && lie(w, r, body, truth)
			})
			rng := rand.New(rand.NewPCG(seed, 1))
			c := &crafted{t: t, r: p.repo}
			tip, all := randomHistory(c, rng)
			if rng.IntN(3) > 0 {
				var objs []obj
				for _, h := range all {
					k, pl, err := p.repo.Get(h)
					if err != nil {
						t.Fatal(err)
					}
					objs = append(objs, obj{h, k, pl})
				}
				lie = randomStreamLie{seed: seed, objs: objs}.lie
			}
			// Whether the stream may prove it is the seed's business; both
			// answers are compared with the walk.
			sealed, _ := sealedVsWalkedAnyProof(t, p.url(), replicate.PullOptions{Zones: []string{"example.com."}})
			if sealed.proofs > 0 {
				proven++
			}
			if got, ok := sealed.refs["example.com./main"]; ok && got != tip.String() {
				t.Fatalf("main moved to %s, the primary's is %s", got, tip)
			}
			if _, failed := sealed.failed["example.com./main"]; failed == (sealed.refs["example.com./main"] != "") {
				t.Fatalf("main: ref %q, failed %v", sealed.refs["example.com./main"], sealed.failed)
			}
		})
	}
	t.Logf("%d of %d pulls proven by their streams", proven, seeds)
	if proven == 0 {
		t.Error("no pull was proven by its stream: the attack never reached the sealed check")
	}
}

// TestSealedAdversaryRevertedHistory: an honest primary whose branch went
// from its first tree to another and back (a change, then its revert):
// the first tree is under two commits. The primary's walk compared it with
// the changed tree and the changed tree with it, each leaving their common
// entries to the other, so the pack (and the walk answer) held only what
// differs, and the client's check, the same walk, took the closure for
// complete: a first pull stored 7 of 49 objects and moved the ref, in
// every mode. The stream's own bookkeeping saw the hole (nothing was
// proven). Now the whole closure comes, and the sealed pull proves it.
func TestSealedAdversaryRevertedHistory(t *testing.T) {
	build := func(t *testing.T, r *repo.Repo) repo.Hash {
		c0 := mustSynthetic(t, r, "example.com.", "main", 20)
		_, pl, err := r.Get(c0)
		if err != nil {
			t.Fatal(err)
		}
		cm, err := repo.DecodeCommit(pl)
		if err != nil {
			t.Fatal(err)
		}
		mustSetA(t, r, "example.com.", "main", "www", 1)
		tip, err := repotest.Commit(r, "example.com.", "main", cm.Tree, "revert")
		if err != nil {
			t.Fatal(err)
		}
		return tip
	}
	t.Run("sealed-vs-walked", func(t *testing.T) {
		p := newPrimary(t, false, nil)
		tip := build(t, p.repo)
		sealed, _ := sealedVsWalked(t, p.url(), nil, replicate.PullOptions{}, nil, true)
		if sealed.refs["example.com./main"] != tip.String() {
			t.Fatalf("refs %v, failed %v", sealed.refs, sealed.failed)
		}
		if n := len(repotest.Closure(t, p.repo, tip)); sealed.objects != n || sealed.branches["example.com./main"][0] != int64(n) {
			t.Errorf("stored %d, credited %d; the closure holds %d", sealed.objects, sealed.branches["example.com./main"][0], n)
		}
	})
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		tip := build(t, p.repo)
		local := openRepo(t, t.TempDir())
		if _, err := newClient(t, p.url(), local, nil).PullWith(context.Background(), replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		wantRefs(t, local, map[string]repo.Hash{"example.com./main": tip})
		assertSound(t, local)
	})
}

// TestSealedAdversaryRandomIncremental: the random histories of
// TestSealedAdversaryRandom from an honest primary, pulled in two steps
// (first a random commit of the history, pinned, then the tip) and in
// one. The two-step pull is never sealed (its second step finds objects)
// and checks with known tips; the replica stays sound, and the tip is
// reached in two steps exactly when it is in one.
func TestSealedAdversaryRandomIncremental(t *testing.T) {
	seeds := 25
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := newPrimary(t, false, nil)
			rng := rand.New(rand.NewPCG(seed, 1))
			c := &crafted{t: t, r: p.repo}
			tip, all := randomHistory(c, rng)
			var commits []repo.Hash
			for _, h := range all {
				if k, _, _ := p.repo.Get(h); k == repo.KindCommit {
					commits = append(commits, h)
				}
			}
			mid := commits[rand.New(rand.NewPCG(seed, 3)).IntN(len(commits))]
			opts := replicate.PullOptions{Zones: []string{"example.com."}}
			one := pullOnce(t, p.url(), openRepo(t, t.TempDir()), opts, nil)
			two := openRepo(t, t.TempDir())
			pullOnce(t, p.url(), two, replicate.PullOptions{Pins: map[string]string{"example.com./main": mid.String()}}, nil)
			second := pullOnce(t, p.url(), two, opts, nil)
			if second.proofs != 0 {
				t.Error("a pull into a store with objects was proven by its stream")
			}
			oneAt, twoAt := one.refs["example.com./main"] == tip.String(), second.refs["example.com./main"] == tip.String()
			if oneAt != twoAt {
				t.Errorf("tip reached in one step %v, in two %v (via %s): %v / %v", oneAt, twoAt, mid.Short(), one.failed, second.failed)
			}
		})
	}
}
