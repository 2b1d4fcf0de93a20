package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// TestPackE2E: against our server the client walks and transfers in one
// request per pull, attributes every object to exactly one branch, and an
// unwalkable pin fails alone, named, while the other branches apply.
func TestPackE2E(t *testing.T) {
	f := &faults{}
	p := newPrimary(t, false, f.wrap)
	tips := map[string]repo.Hash{}
	for z := 0; z < 3; z++ {
		zone := fmt.Sprintf("z%d.test.", z)
		for _, b := range []string{"main", "canary"} {
			tips[zone+"/"+b] = mustSynthetic(t, p.repo, zone, b, 40+z)
		}
	}
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	ctx := context.Background()

	res, err := c.PullWith(ctx, replicate.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 2 || f.count(wire.PackPath) != 1 {
		t.Errorf("full pull: %d requests, %d packs; want 2 (refs, pack), 1", res.Requests, f.count(wire.PackPath))
	}
	if n := f.count("/v0/objects/walk") + f.count(wire.BatchPath) + f.count("/v0/objects/<hash>"); n != 0 {
		t.Errorf("%d walk/batch/GET requests besides the pack", n)
	}
	var all []repo.Hash
	for _, h := range tips {
		all = append(all, h)
	}
	if want := len(repotest.Closure(t, p.repo, all...)); res.Objects != want {
		t.Errorf("full pull: %d objects, want %d (the union of the closures)", res.Objects, want)
	}
	// main and canary of a zone are the same commit here: its objects
	// count for one of them, never both.
	sum, sumBytes := 0, int64(0)
	for _, b := range res.Branches {
		sum += b.Objects
		sumBytes += b.Bytes
	}
	if sum != res.Objects || sumBytes != res.Bytes {
		t.Errorf("branches account for %d objects / %d bytes, pull %d / %d", sum, sumBytes, res.Objects, res.Bytes)
	}
	assertConverged(t, p.repo, local)

	// One changed record: commit, apex tree, the name's tree, its blob.
	mustSetA(t, p.repo, "z1.test.", "main", "h3", 7)
	res, err = c.PullWith(ctx, replicate.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 4 || res.Requests != 2 {
		t.Errorf("incremental pull: %d objects in %d requests, want 4 in 2", res.Objects, res.Requests)
	}
	assertConverged(t, p.repo, local)

	// A pin the primary cannot walk fails alone and is named.
	bogus := repo.HashObject(repo.KindCommit, []byte("not in the primary"))
	mustSetA(t, p.repo, "z2.test.", "main", "h1", 8)
	pins := map[string]string{"z0.test./canary": bogus.String()}
	res, err = c.PullWith(ctx, replicate.PullOptions{Pins: pins})
	var pe *replicate.PullError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Zone != "z0.test." || pe.Failed[0].Name != "canary" {
		t.Fatalf("want exactly the pinned branch to fail: %v", err)
	}
	if !strings.Contains(err.Error(), bogus.String()) {
		t.Errorf("error does not name the pin: %v", err)
	}
	if got := localRefs(t, local)["z2.test./main"]; got != mustBranch(t, p.repo, "z2.test.", "main").String() {
		t.Errorf("z2.test./main = %s, want the primary's new tip", got)
	}
	if res.Objects != 4 {
		t.Errorf("pull with a bad pin: %d objects, want 4", res.Objects)
	}
	assertSound(t, local)
}

// TestPackFaults: a pack stream that breaks or carries a bad object never
// gets anything unverified stored or a ref moved early; what the stream did
// not deliver is fetched separately in the same pull, and when the primary
// is gone the re-run converges.
func TestPackFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fault handles the first pack request (n == 1) itself.
		fault func(inner http.Handler, w http.ResponseWriter, r *http.Request)
		// down: every object request after the fault fails (primary down).
		down bool
	}{
		{name: "truncated-early", fault: func(inner http.Handler, w http.ResponseWriter, r *http.Request) {
			inner.ServeHTTP(&cutAfter{ResponseWriter: w, limit: 300}, r)
		}},
		{name: "truncated-late", fault: func(inner http.Handler, w http.ResponseWriter, r *http.Request) {
			inner.ServeHTTP(&cutAfter{ResponseWriter: w, limit: 20000}, r)
		}},
		{name: "corrupt-object", fault: func(inner http.Handler, w http.ResponseWriter, r *http.Request) {
			// The whole small stream is one write: its last byte is in
			// the last object's payload.
			inner.ServeHTTP(&corrupting{ResponseWriter: w}, r)
		}},
		{name: "refused", fault: func(_ http.Handler, w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "pack disabled here", http.StatusBadRequest)
		}},
		{name: "reset-then-down", down: true, fault: func(inner http.Handler, w http.ResponseWriter, r *http.Request) {
			inner.ServeHTTP(&cutAfter{ResponseWriter: w, limit: 5000}, r)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var faulted, down atomic.Bool
			f := &faults{}
			f.fn = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if r.URL.Path == wire.PackPath && n == 1 {
					faulted.Store(true)
					down.Store(tc.down)
					func() {
						defer func() {
							if v := recover(); v != nil {
								if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
									panic(v)
								}
								panic(http.ErrAbortHandler)
							}
						}()
						tc.fault(r.Context().Value(handlerKey{}).(http.Handler), w, r)
					}()
					return true
				}
				if down.Load() && strings.HasPrefix(r.URL.Path, "/v0/objects/") {
					http.Error(w, "primary down", http.StatusBadGateway)
					return true
				}
				return false
			}
			p := newPrimary(t, false, func(h http.Handler) http.Handler {
				inner := f.wrap(h)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), handlerKey{}, h)))
				})
			})
			tipA := mustSynthetic(t, p.repo, "example.com.", "main", 300)
			tipB := mustSynthetic(t, p.repo, "other.test.", "main", 50)
			local := openRepo(t, t.TempDir())
			c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 2 })
			res, err := c.PullWith(context.Background(), replicate.PullOptions{})
			if !faulted.Load() {
				t.Fatal("no fault injected")
			}
			if tc.down {
				if err == nil {
					t.Fatal("pull succeeded although the primary went down mid-stream")
				}
				if refs := localRefs(t, local); len(refs) != 0 {
					t.Errorf("refs moved although the pull failed: %v", refs)
				}
				assertSound(t, local)
				down.Store(false)
				if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
					t.Fatalf("re-run: %v", err)
				}
				if f.count(wire.PackPath) != 2 {
					t.Errorf("the re-run used %d packs, want 1", f.count(wire.PackPath)-1)
				}
				assertConverged(t, p.repo, local)
				return
			}
			if err != nil {
				t.Fatalf("the pull should recover within the run: %v", err)
			}
			// The rest came by walk/batch, not by repeating the pack.
			if f.count(wire.PackPath) != 1 || f.count(wire.BatchPath) == 0 {
				t.Errorf("packs %d, batches %d; want 1 and at least 1", f.count(wire.PackPath), f.count(wire.BatchPath))
			}
			if tc.name == "refused" && f.count("/v0/objects/walk") == 0 {
				t.Error("a refused pack was not replaced by a walk")
			}
			// Each object is stored once: a frame the stream lost or that
			// did not verify is fetched again, nothing else is.
			if want := len(repotest.Closure(t, p.repo, tipA, tipB)); res.Objects != want {
				t.Errorf("pulled %d objects, the closures hold %d", res.Objects, want)
			}
			assertConverged(t, p.repo, local)
		})
	}
}

// stallAfter sends limit bytes of a response, then calls stalled and
// holds the response open until the request ends.
type stallAfter struct {
	http.ResponseWriter
	r       *http.Request
	limit   int
	n       int
	stalled func()
}

func (s *stallAfter) Write(p []byte) (int, error) {
	if s.n+len(p) > s.limit {
		_, _ = s.ResponseWriter.Write(p[:s.limit-s.n])
		s.ResponseWriter.(http.Flusher).Flush()
		s.stalled()
		<-s.r.Context().Done()
		panic(http.ErrAbortHandler)
	}
	s.n += len(p)
	return s.ResponseWriter.Write(p)
}

func (s *stallAfter) Flush() { s.ResponseWriter.(http.Flusher).Flush() }

// TestPackCanceledMidStream: a pull canceled while its pack stream is
// open (the primary sent part of it and holds the rest) returns
// context.Canceled without waiting for the stream, moves no ref and
// leaves a sound replica.
func TestPackCanceledMidStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stalled atomic.Bool
	p := newPrimary(t, false, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == wire.PackPath && !stalled.Load() {
				h.ServeHTTP(&stallAfter{ResponseWriter: w, r: r, limit: 20000, stalled: func() {
					stalled.Store(true)
					cancel()
				}}, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	mustSynthetic(t, p.repo, "example.com.", "main", 300)
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	_, err := c.PullWith(ctx, replicate.PullOptions{})
	if !stalled.Load() {
		t.Fatal("the pack stream was never held open")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled pull: %v", err)
	}
	if refs := localRefs(t, local); len(refs) != 0 {
		t.Errorf("refs moved by a canceled pull: %v", refs)
	}
	assertSound(t, local)
}
