package replicate_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// faults decides, per request, whether to inject a fault. Its hooks see the
// request number among requests matching the path prefix.
type faults struct {
	mu     sync.Mutex
	counts map[string]int
	// fn returns true when it has written the (faulty) response itself.
	fn func(w http.ResponseWriter, r *http.Request, n int) bool
}

func (f *faults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if f.counts == nil {
			f.counts = map[string]int{}
		}
		key := r.URL.Path
		if strings.HasPrefix(key, "/v0/objects/") && key != wire.BatchPath && key != "/v0/objects/walk" && key != wire.PackPath {
			key = "/v0/objects/<hash>"
		}
		f.counts[key]++
		n := f.counts[key]
		f.mu.Unlock()
		if f.fn != nil && f.fn(w, r, n) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *faults) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[key]
}

// cutAfter passes the real response through but aborts the connection
// after limit body bytes (a reset or truncation mid-body).
type cutAfter struct {
	http.ResponseWriter
	limit, n int
}

func (c *cutAfter) Write(p []byte) (int, error) {
	if c.n+len(p) > c.limit {
		k := c.limit - c.n
		_, _ = c.ResponseWriter.Write(p[:k])
		if fl, ok := c.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.n += len(p)
	return c.ResponseWriter.Write(p)
}

func (c *cutAfter) Flush() {
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

// corrupting flips one payload byte of a v0 object response.
type corrupting struct {
	http.ResponseWriter
	done bool
}

func (c *corrupting) Write(p []byte) (int, error) {
	if !c.done && len(p) > 0 {
		q := append([]byte(nil), p...)
		q[len(q)-1] ^= 0xff
		c.done = true
		return c.ResponseWriter.Write(q)
	}
	return c.ResponseWriter.Write(p)
}

// isStream reports whether r asks for a batch or pack stream.
func isStream(r *http.Request) bool {
	return r.URL.Path == wire.BatchPath || r.URL.Path == wire.PackPath
}

func isObjectGET(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v0/objects/")
}

func setupFault(t *testing.T, v0 bool, f *faults, n int) (*primary, *repo.Repo) {
	t.Helper()
	p := newPrimary(t, v0, f.wrap)
	mustSynthetic(t, p.repo, "example.com.", "main", n)
	mustSynthetic(t, p.repo, "other.test.", "main", n/2)
	return p, openRepo(t, t.TempDir())
}

func TestFaultRetryBursts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
	}{
		{"503", http.StatusServiceUnavailable, ""},
		{"429", http.StatusTooManyRequests, ""},
		{"503-retry-after-1s", http.StatusServiceUnavailable, "1"},
		{"429-retry-after-1h-capped", http.StatusTooManyRequests, "3600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, v0 bool) {
				f := &faults{}
				// Every endpoint answers its first 3 requests with the fault.
				f.fn = func(w http.ResponseWriter, r *http.Request, n int) bool {
					if n > 3 {
						return false
					}
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					http.Error(w, "busy", tc.status)
					return true
				}
				p, local := setupFault(t, v0, f, 60)
				c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryMaxDelay = 50 * time.Millisecond })
				start := time.Now()
				res, err := c.PullWith(context.Background(), replicate.PullOptions{})
				if err != nil {
					t.Fatal(err)
				}
				// Retry-After of an hour is capped at the 50ms max delay.
				if el := time.Since(start); el > 20*time.Second {
					t.Errorf("pull took %s: Retry-After not capped", el)
				}
				walk := "/v0/objects/walk"
				if usesPack(t, v0) {
					walk = wire.PackPath
				}
				if f.count("/v0/refs") != 4 || f.count(walk) != 4 {
					t.Errorf("refs tried %d times, %s %d; want 4 each", f.count("/v0/refs"), walk, f.count(walk))
				}
				// Retries are counted as requests.
				// refs, walk and batch each take 4 tries (pack: refs and pack).
				want := 3*3 + res.Objects/100
				if usesPack(t, v0) {
					want = 2 * 4
				}
				if res.Requests < want {
					t.Errorf("requests = %d, retries not counted", res.Requests)
				}
				assertConverged(t, p.repo, local)
			})
		})
	}
}

func TestFaultNoRetryOn4xx(t *testing.T) {
	f := &faults{fn: func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return true
	}}
	p, local := setupFault(t, false, f, 5)
	c := newClient(t, p.url(), local, nil)
	_, err := c.PullWith(context.Background(), replicate.PullOptions{})
	var se *replicate.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || f.count("/v0/refs") != 1 {
		t.Fatalf("401: %v after %d tries", err, f.count("/v0/refs"))
	}
	want := "GET " + p.url() + "/v0/refs: 401 Unauthorized: check the token"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// Exhausted 5xx retries quote the status and body.
	f.fn = func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "disk on fire", http.StatusInternalServerError)
		return true
	}
	_, err = c.PullWith(context.Background(), replicate.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "500 Internal Server Error: disk on fire") {
		t.Errorf("500: %v", err)
	}
	// Unreachable.
	p.http.Close()
	_, err = c.PullWith(context.Background(), replicate.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "/v0/refs: unreachable: ") {
		t.Errorf("closed server: %v", err)
	}
}

func TestFaultMidBody(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		// The first two batch streams, and the first GET of every 5th
		// object, are cut after a few bytes (connection reset / truncated
		// body); the retries get the real thing.
		var cuts atomic.Int64
		var seen sync.Map
		f := &faults{}
		f.fn = func(w http.ResponseWriter, r *http.Request, n int) bool {
			_, again := seen.LoadOrStore(r.URL.Path, true)
			if (isStream(r) && n <= 2) || (isObjectGET(r) && !again && n%5 == 0) {
				cuts.Add(1)
				limit := 300
				if isObjectGET(r) {
					limit = 3
				}
				func() {
					defer func() {
						if v := recover(); v != nil {
							if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
								panic(v)
							}
						}
					}()
					p := &cutAfter{ResponseWriter: w, limit: limit}
					srv := r.Context().Value(handlerKey{}).(http.Handler)
					srv.ServeHTTP(p, r)
				}()
				panic(http.ErrAbortHandler)
			}
			return false
		}
		p := newPrimary(t, v0, func(h http.Handler) http.Handler {
			inner := f.wrap(h)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), handlerKey{}, h)))
			})
		})
		mustSynthetic(t, p.repo, "example.com.", "main", 100)
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, nil)
		if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		if cuts.Load() == 0 {
			t.Fatal("no fault injected")
		}
		assertConverged(t, p.repo, local)
	})
}

type handlerKey struct{}

func TestFaultCorruptAndWrongKind(t *testing.T) {
	// v0: every GET of one object is corrupted (or mislabelled): its
	// branch fails, naming the object, the other zone's branch applies,
	// nothing unverified is stored, and a re-run after the fault clears
	// converges.
	for _, mode := range []string{"corrupt", "wrong-kind", "corrupt-once"} {
		t.Run(mode, func(t *testing.T) {
			var target atomic.Value
			target.Store("")
			var hits atomic.Int64
			f := &faults{}
			f.fn = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if !isObjectGET(r) || !strings.HasSuffix(r.URL.Path, target.Load().(string)) || target.Load().(string) == "" {
					return false
				}
				if mode == "corrupt-once" && hits.Load() > 0 {
					return false
				}
				hits.Add(1)
				if mode == "wrong-kind" {
					rec := httptest.NewRecorder()
					inner := r.Context().Value(handlerKey{}).(http.Handler)
					inner.ServeHTTP(rec, r)
					w.Header().Set(wire.ObjectKindHeader, "tree")
					w.WriteHeader(rec.Code)
					_, _ = w.Write(rec.Body.Bytes())
					return true
				}
				inner := r.Context().Value(handlerKey{}).(http.Handler)
				inner.ServeHTTP(&corrupting{ResponseWriter: w}, r)
				return true
			}
			p := newPrimary(t, true, func(h http.Handler) http.Handler {
				inner := f.wrap(h)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), handlerKey{}, h)))
				})
			})
			tipA := mustSynthetic(t, p.repo, "example.com.", "main", 30)
			mustSynthetic(t, p.repo, "other.test.", "main", 10)
			// Pick a blob deep in example.com.'s closure.
			var blob repo.Hash
			for h := range repotest.Closure(t, p.repo, tipA) {
				if k, _, _ := p.repo.Get(h); k == repo.KindBlob {
					blob = h
					break
				}
			}
			target.Store(blob.String())
			local := openRepo(t, t.TempDir())
			c := newClient(t, p.url(), local, nil)
			res, err := c.PullWith(context.Background(), replicate.PullOptions{})
			if mode == "corrupt-once" {
				if err != nil {
					t.Fatalf("a corrupt body retried from the network should succeed: %v", err)
				}
				if hits.Load() != 1 {
					t.Errorf("hits %d", hits.Load())
				}
				assertConverged(t, p.repo, local)
				return
			}
			var pe *replicate.PullError
			if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Zone != "example.com." {
				t.Fatalf("want exactly example.com./main to fail: %v", err)
			}
			if !strings.Contains(err.Error(), blob.String()) || !errors.Is(err, repo.ErrHashMismatch) {
				t.Errorf("error does not name the object or the mismatch: %v", err)
			}
			if hits.Load() != 3 {
				t.Errorf("bad object fetched %d times, want 3 (retried from the network)", hits.Load())
			}
			if got := localRefs(t, local); got["example.com./main"] != "" || got["other.test./main"] == "" {
				t.Errorf("refs after a failed branch: %v", got)
			}
			if has, _ := local.Has(blob); has {
				t.Error("the corrupt object was stored")
			}
			_ = res
			assertSound(t, local)
			target.Store("")
			if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
				t.Fatal(err)
			}
			assertConverged(t, p.repo, local)
		})
	}
}

func TestFaultStalledResponse(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		var stalls atomic.Int64
		release := make(chan struct{})
		defer close(release)
		f := &faults{fn: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if (r.URL.Path == "/v0/objects/walk" && n == 1) || (isObjectGET(r) && n == 2) || (isStream(r) && n == 1) {
				stalls.Add(1)
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return true
			}
			return false
		}}
		p, local := setupFault(t, v0, f, 40)
		c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RequestTimeout = 300 * time.Millisecond })
		if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		// One stall per request kind the mode uses (pack: a single one).
		want := int64(2)
		if usesPack(t, v0) {
			want = 1
		}
		if stalls.Load() < want {
			t.Errorf("stalls %d, want %d", stalls.Load(), want)
		}
		assertConverged(t, p.repo, local)
	})
}

func TestFaultWalkAnswerIncomplete(t *testing.T) {
	// A primary whose walk leaves objects out: the closure check finds the
	// children it did not list and fetches them. With pack, a complete
	// but empty stream: the roots are fetched, then what they link to.
	forEachMode(t, func(t *testing.T, v0 bool) {
		f := &faults{fn: func(w http.ResponseWriter, r *http.Request, n int) bool {
			switch r.URL.Path {
			case "/v0/objects/walk":
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"missing":null}`))
				return true
			case wire.PackPath:
				w.Header().Set("Content-Type", wire.ObjectStreamContentType)
				w.Header().Set("Trailer", wire.ObjectCountTrailer)
				w.WriteHeader(http.StatusOK)
				w.Header().Set(wire.ObjectCountTrailer, "0")
				return true
			}
			return false
		}}
		p, local := setupFault(t, v0, f, 20)
		c := newClient(t, p.url(), local, nil)
		if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		assertConverged(t, p.repo, local)
	})
}

func TestFaultServerStoppedMidPull(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		var p *primary
		var once sync.Once
		f := &faults{}
		f.fn = func(w http.ResponseWriter, r *http.Request, n int) bool {
			if (isObjectGET(r) && n == 40) || (isStream(r) && n == 1) {
				once.Do(func() { go p.http.CloseClientConnections(); go p.http.Close() })
				panic(http.ErrAbortHandler)
			}
			return false
		}
		p, local := setupFault(t, v0, f, 80)
		c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 2 })
		_, err := c.PullWith(context.Background(), replicate.PullOptions{})
		if err == nil {
			t.Fatal("pull from a stopped server succeeded")
		}
		if len(localRefs(t, local)) != 0 {
			t.Errorf("refs moved although the pull failed: %v", localRefs(t, local))
		}
		assertSound(t, local)
		// A new primary on the same data: the re-run converges.
		p2 := newPrimary(t, v0, nil)
		p2.repo = p.repo
		c.PrimaryURL = p2.url()
		if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		assertConverged(t, p.repo, local)
	})
}

func TestFaultContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &faults{fn: func(w http.ResponseWriter, r *http.Request, n int) bool {
		if isObjectGET(r) && n == 10 {
			cancel()
		}
		return false
	}}
	p, local := setupFault(t, true, f, 50)
	c := newClient(t, p.url(), local, nil)
	_, err := c.PullWith(ctx, replicate.PullOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled pull: %v", err)
	}
	if len(localRefs(t, local)) != 0 {
		t.Error("refs moved by a canceled pull")
	}
	assertSound(t, local)
}

// TestFaultClientKilled runs a pull in a child process (this test binary
// re-executed), SIGKILLs it after some objects arrived, then re-runs the
// pull here: the replica is sound and converges.
func TestFaultClientKilled(t *testing.T) {
	if os.Getenv("ZONEGIT_PULL_CHILD") != "" {
		t.Skip("child mode")
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	var served atomic.Int64
	gate := make(chan struct{})
	var gateOnce sync.Once
	f := &faults{fn: func(w http.ResponseWriter, r *http.Request, n int) bool {
		if isObjectGET(r) && served.Add(1) == 300 {
			gateOnce.Do(func() { close(gate) })
		}
		return false
	}}
	p, _ := setupFault(t, true, f, 400)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPullChildProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "ZONEGIT_PULL_CHILD="+p.url()+" "+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gate:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("child made no progress: %s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed: %v\n%s", err, out.String())
	}
	local := openRepo(t, dir)
	assertSound(t, local) // whatever refs exist point at complete closures
	c := newClient(t, p.url(), local, nil)
	if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	assertConverged(t, p.repo, local)
}

// TestPullChildProcess is the child half of TestFaultClientKilled.
func TestPullChildProcess(t *testing.T) {
	env := os.Getenv("ZONEGIT_PULL_CHILD")
	if env == "" {
		t.Skip("only run as a child of TestFaultClientKilled")
	}
	url, dir, _ := strings.Cut(env, " ")
	local, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, url, local, func(o *replicate.ClientOptions) { o.Concurrency = 2 })
	_, err = c.PullWith(context.Background(), replicate.PullOptions{})
	t.Fatalf("child pull finished before it was killed: %v", err)
}
