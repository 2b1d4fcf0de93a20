package replicate

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// A hostile primary may answer with a body that never ends. The client
// must stop reading at a bound, with an error that says so, and hold no
// more than the bound in memory: these tests run a real pull against such
// a primary and sample the heap while it runs.

// endless serves a v0 primary (no extensions) with one branch; walk and
// object answer the walk and object GETs.
func endless(t *testing.T, walk, object http.HandlerFunc) (*httptest.Server, repo.Hash) {
	t.Helper()
	tip := repo.HashObject(repo.KindCommit, []byte("the tip"))
	mux := http.NewServeMux()
	mux.HandleFunc("/v0/refs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"zones":["example.com."],"branches":[{"zone":"example.com.","name":"main","hash":"%s"}]}`, tip)
	})
	mux.HandleFunc("/v0/objects/walk", walk)
	mux.HandleFunc("/v0/objects/", object)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, tip
}

// streamUntilGone writes chunks made by next until the client goes away
// (or limit bytes, so a client that never stops cannot hang the test).
func streamUntilGone(w http.ResponseWriter, next func(i int) []byte, limit int64) {
	var n int64
	for i := 0; n < limit; i++ {
		b := next(i)
		if _, err := w.Write(b); err != nil {
			return
		}
		n += int64(len(b))
	}
}

// heapPeak samples the heap until stop is called and returns the most it
// grew above what it held at the start. The collector runs at a tenth of
// its usual target meanwhile, so the heap tracks what the pull holds
// rather than garbage the collector has not got round to.
func heapPeak() (stop func() uint64) {
	gc := debug.SetGCPercent(10)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		debug.SetGCPercent(gc)
		return peak - min(base, peak)
	}
}

// pullOnce pulls from url into a fresh replica and returns how much the
// heap grew during the pull, and the pull's error.
func pullOnce(t *testing.T, url string) (uint64, error) {
	t.Helper()
	local, err := repo.Open(t.TempDir(), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Close() })
	c, err := NewClientWithOptions(local, ClientOptions{PrimaryURL: url, RetryAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	stop := heapPeak()
	_, err = c.PullWith(context.Background(), PullOptions{})
	grew := stop()
	if refs, lerr := local.Branches(""); lerr != nil || len(refs) != 0 {
		t.Errorf("refs moved by a pull from an endless primary: %v %v", refs, lerr)
	}
	return grew, err
}

// TestClientBoundsEndlessWalk: a walk answer that lists hashes without end
// is refused once it lists more than any primary sends (maxWalkHashes,
// lowered here from the real ten million so the test is quick), and one
// JSON value without end (a string, in "missing" or in a field the client
// skips) is refused at maxWalkToken. Memory stays within the bound.
func TestClientBoundsEndlessWalk(t *testing.T) {
	defer func(n int) { maxWalkHashes = n }(maxWalkHashes)
	maxWalkHashes = 100000
	for _, tc := range []struct {
		name  string
		open  string
		chunk func(i int) []byte
		want  string
		limit uint64 // heap growth allowed
	}{
		{"hashes", `{"missing":[`, func(i int) []byte {
			var h repo.Hash
			copy(h[:], fmt.Sprintf("%031d", i))
			return []byte(`"` + hex.EncodeToString(h[:]) + `",`)
		}, "more than 100000 objects", 64 << 20},
		{"one-hash-string", `{"missing":["`, func(int) []byte { return bytes.Repeat([]byte("ab"), 32<<10) }, "larger than 1024 KiB", 32 << 20},
		{"skipped-field", `{"comment":"`, func(int) []byte { return bytes.Repeat([]byte("x"), 64<<10) }, "larger than 1024 KiB", 32 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			srv, _ := endless(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.open))
				streamUntilGone(w, func(i int) []byte {
					b := tc.chunk(i)
					sent.Add(int64(len(b)))
					return b
				}, 4<<30)
			}, http.NotFound)
			grew, err := pullOnce(t, srv.URL)
			t.Logf("walk body read: %d MiB sent, heap grew %d MiB", sent.Load()>>20, grew>>20)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.URL+"/v0/objects/walk") {
				t.Fatalf("want an error naming the walk and %q, got %v", tc.want, err)
			}
			if grew > tc.limit {
				t.Errorf("heap grew %d MiB reading an endless walk answer, bound %d MiB", grew>>20, tc.limit>>20)
			}
		})
	}
}

// TestClientBoundsEndlessObject: object GETs whose bodies never end are
// cut at maxObjectBytes, each with an error naming the object, and the
// eight concurrent GETs hold at most one large body at a time between them
// (about maxObjectBytes plus eight small buffers, where unbounded reads
// held eight times the bound).
func TestClientBoundsEndlessObject(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a few GiB over loopback")
	}
	var blobs []string
	for i := 0; i < 8; i++ {
		blobs = append(blobs, repo.HashObject(repo.KindBlob, []byte{byte(i)}).String())
	}
	srv, tip := endless(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"missing":["%s"]}`, strings.Join(blobs, `","`))
	}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wire.ObjectKindHeader, "blob")
		chunk := bytes.Repeat([]byte{7}, 64<<10)
		streamUntilGone(w, func(int) []byte { return chunk }, 4*maxObjectBytes)
	})
	grew, err := pullOnce(t, srv.URL)
	t.Logf("heap grew %d MiB", grew>>20)
	var pe *PullError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 {
		t.Fatalf("want the branch to fail: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "exceeds the 64 MiB limit") || !strings.Contains(msg, "/v0/objects/") {
		t.Errorf("error does not name the object and the bound: %v", err)
	}
	_ = tip
	// One body at its bound (64 MiB, plus the 16 MiB it grew from while
	// it is copied), seven small ones and the collector's slack, where
	// eight unbounded bodies held eight times the bound.
	if grew > 160<<20 {
		t.Errorf("heap grew %d MiB reading eight endless bodies at once", grew>>20)
	}
}
