package replicate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// The closure check trusts what this pull received instead of reading it
// back (a blob it stored is not read; a small tree it stored is read from
// memory). These tests hold that trust to its terms: a link to an object
// that was never sent does not find the receipt of one that was, however
// many leading bytes their hashes share, and an object that was already
// local (a killed pull left it) is read and checked as before.

// lieAboutRoot answers walk and pack requests for root with objs (the
// walk lists them, the pack streams them) and leaves every other request,
// batch and GETs included, to the truth.
func lieAboutRoot(root *repo.Hash, objs *[]obj) func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
	return func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
		var req wire.WalkRequest
		if r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil || !slices.Contains(req.Roots, root.String()) {
			return false
		}
		switch r.URL.Path {
		case wire.WalkPath:
			var wr replicate.WalkResponse
			for _, o := range *objs {
				wr.Missing = append(wr.Missing, o.h.String())
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(wr)
			return true
		case wire.PackPath:
			writeStream(w, *objs)
			return true
		}
		return false
	}
}

// TestHostileReceiptTwins: a primary sends a tree linking a blob it sends
// and a "twin" it never sends (no object has that hash), whose hash
// shares its first 8, 16 or 31 bytes with the blob's. A receipt set keyed
// by a prefix of the hash would take the twin for the blob received and
// let the branch move onto a closure that lacks it. In every mode the
// branch fails naming the twin as missing, the branch the lie does not
// touch stays, and the replica is sound.
func TestHostileReceiptTwins(t *testing.T) {
	for _, shared := range []int{8, 16, 31} {
		t.Run(strconv.Itoa(shared), func(t *testing.T) {
			forEachMode(t, func(t *testing.T, v0 bool) {
				var lying atomic.Bool
				var tip repo.Hash
				var objs []obj
				lie := lieAboutRoot(&tip, &objs)
				p := newLiar(t, v0, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
					return lying.Load() && lie(w, r, body, truth)
				})
				c := newCrafted(t, p.repo)
				blob := c.blob("twin.example.com.", 9)
				tw := blob
				for i := shared; i < len(tw); i++ {
					tw[i] ^= 0xff
				}
				tree := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: blob}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "TXT", Hash: tw})
				tip = c.commit("example.com.", "twin", tree)
				for _, h := range []repo.Hash{tip, tree, blob} {
					k, pl, err := p.repo.Get(h)
					if err != nil {
						t.Fatal(err)
					}
					objs = append(objs, obj{h, k, pl})
				}
				if has, _ := p.repo.Has(tw); has {
					t.Fatal("the twin exists")
				}

				local := openRepo(t, t.TempDir())
				cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
				if _, err := cl.PullWith(context.Background(), replicate.PullOptions{Branches: []string{"main"}}); err != nil {
					t.Fatal(err)
				}
				lying.Store(true)
				_, err := cl.PullWith(context.Background(), replicate.PullOptions{})
				wantFailed(t, err, map[string][]string{"example.com./twin": {tw.String(), "missing"}})
				wantRefs(t, local, map[string]repo.Hash{"example.com./main": c.base})
				if has, _ := local.Has(blob); !has {
					t.Error("the blob sent was not stored: the lie was not received as sent")
				}
				assertSound(t, local)
			})
		})
	}
}

// TestPullPreexistingIncompleteTree: a killed pull left a tree and one of
// its two blobs in the replica (no ref names them). The primary has since
// lost the other blob, and its walk and pack claim the new branch needs
// only its commit (the replica "has" the tree). The tree was not received
// by this pull, so the check reads it from the store and finds the hole:
// in every mode the branch fails naming the lost blob as missing, and the
// replica is sound.
func TestPullPreexistingIncompleteTree(t *testing.T) {
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
		kept := c.blob("left.example.com.", 1)
		lost := c.blob("left.example.com.", 2)
		tree := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: kept}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "TXT", Hash: lost})
		tip = c.commit("example.com.", "next", tree)
		copyWithout(t, full, p.repo, lost)
		k, pl, err := p.repo.Get(tip)
		if err != nil {
			t.Fatal(err)
		}
		objs = []obj{{tip, k, pl}}

		local := openRepo(t, t.TempDir())
		cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		if _, err := cl.PullWith(context.Background(), replicate.PullOptions{Branches: []string{"main"}}); err != nil {
			t.Fatal(err)
		}
		// What the killed pull left.
		for _, h := range []repo.Hash{tree, kept} {
			k, pl, err := full.Get(h)
			if err != nil {
				t.Fatal(err)
			}
			if err := local.Put(h, k, pl); err != nil {
				t.Fatal(err)
			}
		}
		lying.Store(true)
		_, err = cl.PullWith(context.Background(), replicate.PullOptions{})
		wantFailed(t, err, map[string][]string{"example.com./next": {lost.String(), "missing"}})
		wantRefs(t, local, map[string]repo.Hash{"example.com./main": c.base})
		assertSound(t, local)
	})
}
