package replicate_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// largeApexNames makes a flat zone whose apex tree is over 1 MiB: a pack
// stream's frame of it is read straight into the stored copy and hashed as
// it arrives, and the client writes it ahead of the rest of the batch.
const largeApexNames = 30000

// apexOf returns the apex tree of a zone's tip in a flat zone (the tree
// the commit's root tree names for the zone) and its size.
func apexOf(t *testing.T, r *repo.Repo, tip repo.Hash) (repo.Hash, int) {
	t.Helper()
	var best repo.Hash
	size := 0
	for h := range closureTrees(t, r, tip) {
		_, p, err := r.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > size {
			best, size = h, len(p)
		}
	}
	return best, size
}

// closureTrees returns the trees reachable from tip.
func closureTrees(t *testing.T, r *repo.Repo, tip repo.Hash) map[repo.Hash]bool {
	t.Helper()
	out := map[repo.Hash]bool{}
	_, p, err := r.Get(tip)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.DecodeCommit(p)
	if err != nil {
		t.Fatal(err)
	}
	stack := []repo.Hash{c.Tree}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if out[h] {
			continue
		}
		out[h] = true
		_, p, err := r.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := repo.DecodeTree(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tr.Entries {
			if e.Kind == repo.EntrySubtree {
				stack = append(stack, e.Hash)
			}
		}
	}
	return out
}

// TestHostileLargeApex: an incremental pull of one changed record in a
// flat zone whose apex tree is over 1 MiB, from a primary whose pack
// stream forges that tree (a flipped byte), mislabels it (another kind),
// or cuts the stream inside its payload. The large frame takes the path
// that reads it into the stored copy and hashes it as it comes, and the
// write ahead: neither may store it, nor move the ref to it. With an
// honest batch and GET fallback the pull converges; when they lie the same
// way, the branch fails naming the tree, stays at the previous commit, and
// the replica is sound.
func TestHostileLargeApex(t *testing.T) {
	flip := func(o obj) (obj, bool) {
		p := bytes.Clone(o.payload)
		p[len(p)/2] ^= 0x55
		return obj{o.h, o.kind, p}, true
	}
	for _, tc := range []struct {
		name  string
		edit  objectEdit // nil: cut the pack stream inside the tree's payload
		cause string
	}{
		{"forges", flip, "failed verification"},
		{"mislabels", func(o obj) (obj, bool) { return obj{o.h, repo.KindBlob, o.payload}, true }, "failed verification"},
		{"truncates", nil, ""},
	} {
		for _, fallback := range []string{"honest", "lying"} {
			if tc.edit == nil && fallback == "lying" {
				continue // a cut stream is retried by batch and GET, which cannot be cut the same way
			}
			t.Run(tc.name+"/"+fallback, func(t *testing.T) {
				var lie atomic.Pointer[func(http.ResponseWriter, *http.Request, []byte, http.Handler) bool]
				var lied atomic.Int64
				p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
					f := lie.Load()
					if f == nil {
						return false
					}
					if r.URL.Path == wire.PackPath {
						lied.Add(1)
					}
					return (*f)(w, r, body, truth)
				})
				base := mustSynthetic(t, p.repo, "example.com.", "main", largeApexNames)
				local := openRepo(t, t.TempDir())
				c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
				if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
					t.Fatal(err)
				}
				tip := mustSetA(t, p.repo, "example.com.", "main", "h17", 77)
				victim, size := apexOf(t, p.repo, tip)
				if size < 1<<20 {
					t.Fatalf("apex tree of %d bytes: the test needs one over 1 MiB", size)
				}
				var f func(http.ResponseWriter, *http.Request, []byte, http.Handler) bool
				if tc.edit != nil {
					where := []string{"pack"}
					if fallback == "lying" {
						where = append(where, "batch", "get")
					}
					f = lieAbout(victim, tc.edit, where...)
				} else {
					f = cutInside(victim)
				}
				lie.Store(&f)
				res, err := c.PullWith(context.Background(), replicate.PullOptions{})
				if lied.Load() == 0 {
					t.Fatal("the client never asked for a pack")
				}
				if fallback == "honest" {
					if err != nil {
						t.Fatalf("an honest fallback should complete the closure: %v", err)
					}
					assertConverged(t, p.repo, local)
					if res.Objects < 2 {
						t.Errorf("stored %d objects, want the new apex tree and what changed below it", res.Objects)
					}
					return
				}
				wantFailed(t, err, map[string][]string{"example.com./main": {victim.String(), tc.cause}})
				wantRefs(t, local, map[string]repo.Hash{"example.com./main": base})
				if has, _ := local.Has(victim); has {
					t.Error("the lied-about tree was stored")
				}
				assertSound(t, local)
			})
		}
	}
}

// cutInside answers pack requests with the real stream cut halfway into
// victim's payload: no later frame, no count trailer.
func cutInside(victim repo.Hash) func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
	return func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
		if r.URL.Path != wire.PackPath {
			return false
		}
		frames, ok := realFrames(truth, r, body)
		if !ok {
			return false
		}
		w.Header().Set("Content-Type", wire.ObjectStreamContentType)
		w.Header().Set("Trailer", wire.ObjectCountTrailer)
		w.WriteHeader(http.StatusOK)
		for _, o := range frames {
			if o.h == victim {
				f := o.frame()
				hdr := len(o.h.String()) + 1 + len(o.kind) + 1 + len(strconv.Itoa(len(o.payload))) + 1
				_, _ = w.Write(f[:hdr+len(o.payload)/2])
				if fl, ok := w.(http.Flusher); ok {
					fl.Flush()
				}
				panic(http.ErrAbortHandler) // drop the connection: a truncated stream
			}
			_, _ = w.Write(o.frame())
		}
		return true
	}
}

// TestHostileLargeJunk: a pack stream that, after the real objects, sends
// large frames without end, none of them hashing to its name. Each is read
// in full to be hashed, so the client must stop the stream at the first
// rather than read frames ahead of the one that stops it: with each junk
// frame counted at its length against the read-ahead budget, at most that
// budget is read past it, and the primary's writes fail long before the
// end. Nothing of it is stored, and the pull converges.
func TestHostileLargeJunk(t *testing.T) {
	const frames, size = 200, 300 << 10 // 60 MB in all
	var written, lied atomic.Int64
	p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
		if r.URL.Path != wire.PackPath || lied.Add(1) > 1 {
			return false
		}
		honest, ok := realFrames(truth, r, body)
		if !ok {
			return false
		}
		w.Header().Set("Content-Type", wire.ObjectStreamContentType)
		w.Header().Set("Trailer", wire.ObjectCountTrailer)
		w.WriteHeader(http.StatusOK)
		for _, o := range honest {
			_, _ = w.Write(o.frame())
		}
		junk := bytes.Repeat([]byte{'j'}, size)
		for i := range frames {
			var h repo.Hash
			h[0], h[1] = byte(i>>8), byte(i)
			if _, err := w.Write(obj{h: h, kind: repo.KindBlob, payload: junk}.frame()); err != nil {
				return true
			}
			written.Add(1)
		}
		return true
	})
	tip := mustSynthetic(t, p.repo, "example.com.", "main", 50)
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
		t.Fatalf("the honest transports should complete the closure: %v", err)
	}
	assertConverged(t, p.repo, local)
	if lied.Load() == 0 {
		t.Fatal("the client never asked for a pack")
	}
	// The read-ahead budget (4 MiB) and the socket buffers hold a few
	// dozen such frames; a client that counted a refused frame at nothing
	// read on to its chunk's frame limit, 170 of them here.
	if n := written.Load(); n >= 60 {
		t.Errorf("the primary wrote %d junk frames of %d KiB: the client read on past the first", n, size>>10)
	}
	wantRefs(t, local, map[string]repo.Hash{"example.com./main": tip})
}
