package replicate_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// proofLog records whether a pull proved a closure by its pack stream
// instead of walking it (the Debug line of the sealed check).
type proofLog struct {
	mu     sync.Mutex
	proven []string
}

const provenMsg = "closure proven by the pack stream"

func (l *proofLog) Debug(msg string, kv ...interface{}) {
	if strings.HasPrefix(msg, provenMsg) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.proven = append(l.proven, fmt.Sprint(kv...))
	}
}
func (l *proofLog) Info(string, ...interface{})  {}
func (l *proofLog) Warn(string, ...interface{})  {}
func (l *proofLog) Error(string, ...interface{}) {}

func (l *proofLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.proven)
}

// TestSealedFirstPull: a first pull of one branch by pack into an empty
// store is proven by its stream, and reports what the walk would have:
// the same refs, a sound replica and the same per-branch counts as a pull
// of the same branch that the walk checks (a store holding an unrelated
// object, a pull of two branches). Nothing else is proven so.
func TestSealedFirstPull(t *testing.T) {
	p := newPrimary(t, false, nil)
	tip := mustSynthetic(t, p.repo, "example.com.", "main", 300)
	mustSynthetic(t, p.repo, "other.test.", "main", 20)
	one := replicate.PullOptions{Zones: []string{"example.com."}}

	pull := func(t *testing.T, local *repo.Repo, opts replicate.PullOptions) (*replicate.PullResult, int) {
		t.Helper()
		log := &proofLog{}
		c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.Logger = log })
		res, err := c.PullWith(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		assertSound(t, local)
		return res, log.count()
	}
	branch := func(t *testing.T, res *replicate.PullResult, ref string) replicate.BranchResult {
		t.Helper()
		for _, b := range res.Branches {
			if b.Zone+"/"+b.Name == ref {
				return b
			}
		}
		t.Fatalf("no %s in %+v", ref, res.Branches)
		return replicate.BranchResult{}
	}

	sealedRepo := openRepo(t, t.TempDir())
	sealed, proofs := pull(t, sealedRepo, one)
	if proofs != 1 {
		t.Fatalf("first pull of one branch into an empty store: %d proofs by the stream, want 1", proofs)
	}
	wantRefs(t, sealedRepo, map[string]repo.Hash{"example.com./main": tip})
	got := branch(t, sealed, "example.com./main")
	if got.Objects != sealed.Objects || got.Bytes != sealed.Bytes || got.Objects == 0 {
		t.Fatalf("sealed branch credited %d objects/%d bytes, pull stored %d/%d", got.Objects, got.Bytes, sealed.Objects, sealed.Bytes)
	}

	// The same branch, checked by the walk: the store holds an object
	// already (it could be left by a killed pull, so nothing is proven).
	walkedRepo := openRepo(t, t.TempDir())
	if _, err := walkedRepo.PutObject(repo.KindBlob, mustBlob(t, "stray.example.", 7)); err != nil {
		t.Fatal(err)
	}
	walked, proofs := pull(t, walkedRepo, one)
	if proofs != 0 {
		t.Fatal("a store holding an object was proven by the stream")
	}
	if w := branch(t, walked, "example.com./main"); w.Objects != got.Objects || w.Bytes != got.Bytes {
		t.Fatalf("walk credited %d objects/%d bytes, the stream's proof %d/%d", w.Objects, w.Bytes, got.Objects, got.Bytes)
	}

	// Two roots: the credits per branch are the walk's.
	both, proofs := pull(t, openRepo(t, t.TempDir()), replicate.PullOptions{})
	if proofs != 0 {
		t.Fatal("a pull of two roots was proven by the stream")
	}
	if b := branch(t, both, "example.com./main"); b.Objects+branch(t, both, "other.test./main").Objects != both.Objects {
		t.Fatalf("two branches credited %+v, pull stored %d", both.Branches, both.Objects)
	}

	// A second pull: the store is not empty.
	mustSynthetic(t, p.repo, "example.com.", "main", 301)
	if _, proofs := pull(t, sealedRepo, one); proofs != 0 {
		t.Fatal("an incremental pull was proven by the stream")
	}
}

func mustBlob(t *testing.T, owner string, ip byte) []byte {
	t.Helper()
	b, err := (&repo.Blob{Owner: owner, Class: 1, Type: 1, TTL: 300, RData: [][]byte{{192, 0, 2, ip}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealedHostile: what a sealed pull's stream cannot prove, the walk
// checks. Each primary lies about one branch, pulled alone into an empty
// store by pack; the branch fails naming the object, the replica stays
// sound, and the lie broke the seal (no proof logged).
func TestSealedHostile(t *testing.T) {
	cases := map[string]struct {
		build func(c *sealedCrafted) (branch string, victim repo.Hash)
		lie   func(victim repo.Hash) func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool
		want  string
	}{
		// One tree links the same tree as a subtree and as a leaf: the
		// stream sends it once, as the kinds both links allow.
		"subtree-and-leaf": {
			build: func(c *sealedCrafted) (string, repo.Hash) {
				a := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("a.example.com.", 1)})
				c.commit("example.com.", "dual", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: a}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: a}))
				return "dual", a
			},
			want: "linked as",
		},
		// A leaf names a tree the stream sent before, as a subtree.
		"leaf-at-tree-sent-earlier": {
			build: func(c *sealedCrafted) (string, repo.Hash) {
				a := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("a.example.com.", 1)})
				b := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: a})
				c.commit("example.com.", "earlier", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: a}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "b", Hash: b}))
				return "earlier", a
			},
			want: "linked as",
		},
		// The same, with the stream in an order where the wrong link is
		// the last thing it brings: nothing is left wanted, so only the
		// stopped stream tells.
		"leaf-at-tree-last": {
			build: func(c *sealedCrafted) (string, repo.Hash) {
				blob := c.blob("a.example.com.", 1)
				a := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: blob})
				b := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: a})
				root := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: a}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "b", Hash: b})
				tip := c.commit("example.com.", "last", root)
				c.stream = nil
				for _, h := range []repo.Hash{tip, root, a, blob, b} {
					k, pl, err := c.r.Get(h)
					if err != nil {
						c.t.Fatal(err)
					}
					c.stream = append(c.stream, obj{h: h, kind: k, payload: pl})
				}
				return "last", a
			},
			want: "linked as",
		},
		// A commit names the zero hash as its tree: no object has that
		// name, and no local parent's tree is it.
		"zero-tree": {
			build: func(c *sealedCrafted) (string, repo.Hash) {
				tip := c.commit("example.com.", "zero", repo.ZeroHash)
				_, pl, err := c.r.Get(tip)
				if err != nil {
					c.t.Fatal(err)
				}
				c.stream = []obj{{h: tip, kind: repo.KindCommit, payload: pl}}
				return "zero", repo.ZeroHash
			},
			want: "missing",
		},
		// The stream leaves a blob out and ends cleanly; batch and GET
		// say the primary lacks it.
		"blob-left-out": {
			build: func(c *sealedCrafted) (string, repo.Hash) {
				lost := c.blob("lost.example.com.", 9)
				c.commit("example.com.", "lost", c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: lost}))
				return "lost", lost
			},
			lie: func(victim repo.Hash) func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				return lieAbout(victim, func(obj) (obj, bool) { return obj{}, false }, "pack", "batch", "get")
			},
			want: "missing",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var victim repo.Hash
			var lie func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool
			p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				return lie != nil && lie(w, r, body, truth)
			})
			c := &sealedCrafted{crafted: newCrafted(t, p.repo)}
			branch, v := tc.build(c)
			victim = v
			switch {
			case tc.lie != nil:
				lie = tc.lie(victim)
			case c.stream != nil:
				lie = func(w http.ResponseWriter, r *http.Request, _ []byte, _ http.Handler) bool {
					if r.URL.Path != wire.PackPath {
						return false
					}
					writeStream(w, c.stream)
					return true
				}
			}
			local := openRepo(t, t.TempDir())
			log := &proofLog{}
			cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1; o.Logger = log })
			_, err := cl.PullWith(context.Background(), replicate.PullOptions{Zones: []string{"example.com."}, Branches: []string{branch}})
			wantFailed(t, err, map[string][]string{"example.com./" + branch: {victim.String(), tc.want}})
			if log.count() != 0 {
				t.Fatalf("a lying stream was proven: %v", log.proven)
			}
			wantRefs(t, local, map[string]repo.Hash{})
			assertSound(t, local)
		})
	}
}

// sealedCrafted is crafted with, optionally, the exact pack stream the
// liar sends.
type sealedCrafted struct {
	*crafted
	stream []obj
}

// TestLocalRefToMissingObject: a local ref naming an object the replica
// lacks (damage, or a hand edit) is not trusted as a complete closure. A
// tag naming the primary's tip, with nothing stored, made the pull take
// that tip as known: the branch moved to it with nothing below it.
func TestLocalRefToMissingObject(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		tip := mustSynthetic(t, p.repo, "other.test.", "main", 30)
		local := openRepo(t, t.TempDir())
		if err := local.UpdateTag("other.test.", "v1", repo.ZeroHash, tip, nil); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, p.url(), local, nil)
		res, err := c.PullWith(context.Background(), replicate.PullOptions{Zones: []string{"other.test."}, Branches: []string{"main"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustBranch(t, local, "other.test.", "main"); got != tip {
			t.Fatalf("main = %s, want %s", got, tip)
		}
		if res.Objects < 30 {
			t.Fatalf("pulled %d objects for a 30-record zone", res.Objects)
		}
		assertSound(t, local)
	})
}
