package replicate_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// TestHostileLargeWriteAhead: an incremental pull of two flat zones whose
// apex trees are over 1 MiB each (two objects written ahead, the second
// waiting for the first's flush) from a primary whose first pack stream
// sends a large tree twice, ends the connection right after the first or
// the second large tree, or is cut while the client's context is canceled
// just after a large tree arrived. Whatever the pull reports, every ref is
// at its old commit or at the new one with its closure complete, the
// replica is sound, and the next (honest) pull converges.
func TestHostileLargeWriteAhead(t *testing.T) {
	for _, mode := range []string{"twice", "cut after first", "cut after second", "cancel after first"} {
		t.Run(mode, func(t *testing.T) {
			var lied atomic.Int64
			var armed atomic.Bool
			var cancel atomic.Pointer[context.CancelFunc]
			p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				if r.URL.Path != wire.PackPath || !armed.Load() || lied.Load() > 0 {
					return false
				}
				frames, ok := realFrames(truth, r, body)
				if !ok {
					return false
				}
				large := 0
				for _, o := range frames {
					if len(o.payload) >= 1<<20 {
						large++
					}
				}
				if large < 2 {
					return false
				}
				lied.Add(1)
				w.Header().Set("Content-Type", wire.ObjectStreamContentType)
				w.Header().Set("Trailer", wire.ObjectCountTrailer)
				w.WriteHeader(http.StatusOK)
				seen := 0
				for _, o := range frames {
					_, _ = w.Write(o.frame())
					if len(o.payload) < 1<<20 {
						continue
					}
					seen++
					if fl, ok := w.(http.Flusher); ok {
						fl.Flush()
					}
					switch {
					case mode == "twice":
						_, _ = w.Write(o.frame())
					case mode == "cut after first" && seen == 1, mode == "cut after second" && seen == 2:
						panic(http.ErrAbortHandler)
					case mode == "cancel after first" && seen == 1:
						time.Sleep(50 * time.Millisecond) // the tree is in, its write ahead started
						(*cancel.Load())()
						time.Sleep(200 * time.Millisecond)
						panic(http.ErrAbortHandler)
					}
				}
				return true
			})
			zones := []string{"example.com.", "example.net."}
			base := map[string]repo.Hash{}
			for _, z := range zones {
				base[z+"/main"] = mustSynthetic(t, p.repo, z, "main", largeApexNames)
			}
			local := openRepo(t, t.TempDir())
			c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
			if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
				t.Fatal(err)
			}
			next := map[string]repo.Hash{}
			for i, z := range zones {
				next[z+"/main"] = mustSetA(t, p.repo, z, "main", "h17", byte(70+i))
			}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			cancel.Store(&stop)
			armed.Store(true)
			_, err := c.PullWith(ctx, replicate.PullOptions{})
			if lied.Load() == 0 {
				t.Fatal("the pack stream with both large trees was never asked for")
			}
			if mode == "cancel after first" && err == nil {
				t.Error("a pull whose context was canceled mid-stream reported success")
			}
			t.Logf("attacked pull: %v", err)
			bs, berr := local.Branches("")
			if berr != nil {
				t.Fatal(berr)
			}
			for _, b := range bs {
				k := b.Zone + "/" + b.Name
				if b.Hash != base[k] && b.Hash != next[k] {
					t.Errorf("%s = %s: neither the old commit %s nor the new %s", k, b.Hash.Short(), base[k].Short(), next[k].Short())
				}
			}
			assertSound(t, local)
			if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil && !strings.Contains(err.Error(), "nothing") {
				t.Fatalf("the honest pull after: %v", err)
			}
			assertConverged(t, p.repo, local)
			assertSound(t, local)
		})
	}
}
