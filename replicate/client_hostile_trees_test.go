package replicate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// rawTreePayload encodes entries as given: no sorting, no checks, and a
// count byte sequence of the caller's choice (nil: the canonical one).
func rawTreePayload(count []byte, es ...repo.TreeEntry) []byte {
	if count == nil {
		count = []byte{byte(len(es))}
	}
	p := append([]byte{1}, count...)
	for _, e := range es {
		p = append(p, byte(e.Kind), byte(len(e.Name)))
		p = append(p, e.Name...)
		p = append(p, e.Hash[:]...)
	}
	return p
}

// TestHostileNonCanonicalTrees: a primary that serves a tree breaking a
// rule of the tree format (entries out of order, a duplicate entry, a
// padded entry count, a trailing byte, an unknown entry kind) and lies
// that its walk found nothing wrong: the walk answer and the pack stream
// list the commit, the tree and its blob. The tree hashes right, so only
// the one tree reader (repo) can refuse it: the branch fails naming the
// tree and "does not decode", in every mode, the tree is never stored and
// the branch the lie does not touch stays where it was.
func TestHostileNonCanonicalTrees(t *testing.T) {
	for name, build := range map[string]func(b repo.Hash) []byte{
		"unsorted": func(b repo.Hash) []byte {
			return rawTreePayload(nil, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "TXT", Hash: b}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: b})
		},
		"duplicate": func(b repo.Hash) []byte {
			return rawTreePayload(nil, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: b}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: b})
		},
		"padded-count": func(b repo.Hash) []byte {
			return rawTreePayload([]byte{0x81, 0x00}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: b})
		},
		"trailing-byte": func(b repo.Hash) []byte {
			return append(rawTreePayload(nil, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: b}), 0)
		},
		"unknown-kind": func(b repo.Hash) []byte {
			return rawTreePayload(nil, repo.TreeEntry{Kind: 2, Name: "A", Hash: b})
		},
	} {
		t.Run(name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, v0 bool) {
				var lying atomic.Bool
				var objs []obj // the lie: commit, tree, blob
				p := newLiar(t, v0, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
					if !lying.Load() {
						return false
					}
					var req wire.WalkRequest
					if r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil {
						return false
					}
					asked := false
					for _, h := range req.Roots {
						asked = asked || h == objs[0].h.String()
					}
					if !asked {
						return false
					}
					switch r.URL.Path {
					case wire.WalkPath:
						var wr replicate.WalkResponse
						for _, o := range objs {
							wr.Missing = append(wr.Missing, o.h.String())
						}
						w.Header().Set("Content-Type", "application/json")
						_ = json.NewEncoder(w).Encode(wr)
						return true
					case wire.PackPath:
						writeStream(w, objs)
						return true
					}
					return false
				})
				c := newCrafted(t, p.repo)
				blob := c.blob("broken.example.com.", 7)
				_, bp, err := p.repo.Get(blob)
				if err != nil {
					t.Fatal(err)
				}
				tp := build(blob)
				if err := repo.Validate(repo.KindTree, tp); err == nil {
					t.Fatalf("the crafted tree %x is valid", tp)
				}
				tree := c.put(repo.KindTree, tp)
				tip := c.commit("example.com.", "broken", tree)
				_, cp, err := p.repo.Get(tip)
				if err != nil {
					t.Fatal(err)
				}
				objs = []obj{{tip, repo.KindCommit, cp}, {tree, repo.KindTree, tp}, {blob, repo.KindBlob, bp}}

				local := openRepo(t, t.TempDir())
				cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
				if _, err := cl.PullWith(context.Background(), replicate.PullOptions{Branches: []string{"main"}}); err != nil {
					t.Fatal(err)
				}
				lying.Store(true)
				_, err = cl.PullWith(context.Background(), replicate.PullOptions{})
				wantFailed(t, err, map[string][]string{"example.com./broken": {tree.String(), "does not decode"}})
				wantRefs(t, local, map[string]repo.Hash{"example.com./main": c.base})
				if has, _ := local.Has(tree); has {
					t.Error("the tree that breaks the format was stored")
				}
				assertSound(t, local)
			})
		})
	}
}
