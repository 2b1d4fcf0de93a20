package replicate_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// hangBound bounds waits that only fail when something hangs; it is not a
// performance limit.
const hangBound = 10 * time.Second

// pullLog records what Run reports through OnPull.
type pullLog struct {
	mu      sync.Mutex
	results []*replicate.PullResult
	errs    []error
	at      []time.Time
	changed chan struct{} // signalled (without blocking) on every report
}

func newPullLog() *pullLog { return &pullLog{changed: make(chan struct{}, 1)} }

func (l *pullLog) onPull(res *replicate.PullResult, err error) {
	l.mu.Lock()
	l.results = append(l.results, res)
	l.errs = append(l.errs, err)
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *pullLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

// waitFor waits until cond holds over the reports so far.
func (l *pullLog) waitFor(t *testing.T, what string, cond func(res []*replicate.PullResult, errs []error) bool) {
	t.Helper()
	deadline := time.After(hangBound)
	for {
		l.mu.Lock()
		ok := cond(l.results, l.errs)
		n := len(l.results)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("no %s after %d reported pulls", what, n)
		}
	}
}

// runHandle is a Run loop in a goroutine: done closes when Run returns err.
type runHandle struct {
	done chan struct{}
	err  error
}

// startRun runs c.Run in a goroutine. The loop is stopped and waited for
// at cleanup, before the repositories close.
func startRun(ctx context.Context, t *testing.T, c *replicate.Client) *runHandle {
	t.Helper()
	h := &runHandle{done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.err = c.Run(ctx)
	}()
	t.Cleanup(func() {
		c.Stop()
		select {
		case <-h.done:
		case <-time.After(hangBound):
			t.Error("Run did not return after Stop")
		}
	})
	return h
}

// branchMovedTo reports whether some successful pull moved zone/branch to h.
func branchMovedTo(zone, branch string, h repo.Hash) func([]*replicate.PullResult, []error) bool {
	return func(res []*replicate.PullResult, errs []error) bool {
		for i, r := range res {
			if errs[i] != nil {
				continue
			}
			for _, b := range r.Branches {
				if b.Zone == zone && b.Name == branch && b.New == h.String() && b.Err == nil {
					return true
				}
			}
		}
		return false
	}
}

func TestRunPicksUpNewCommit(t *testing.T) {
	p := newPrimary(t, false, nil)
	h1 := mustSynthetic(t, p.repo, "example.com.", "main", 20)
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	c.Interval = 20 * time.Millisecond
	log := newPullLog()
	c.OnPull = log.onPull
	startRun(context.Background(), t, c)

	log.waitFor(t, "pull bringing the first commit", branchMovedTo("example.com.", "main", h1))
	h2 := mustSetA(t, p.repo, "example.com.", "main", "www", 7)
	log.waitFor(t, "pull bringing the new commit", branchMovedTo("example.com.", "main", h2))
	if got := localRefs(t, local)["example.com./main"]; got != h2.String() {
		t.Fatalf("local example.com./main = %s after a reported pull, want %s", got, h2)
	}
	log.mu.Lock()
	for i, err := range log.errs {
		if err != nil {
			t.Errorf("pull %d failed against a healthy primary: %v", i, err)
		}
	}
	log.mu.Unlock()
	c.Stop()
	assertConverged(t, p.repo, local)
}

// failingPrimary answers 500 to everything while fail is set.
func failingPrimary(t *testing.T, fail *atomic.Bool) *primary {
	return newPrimary(t, false, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fail.Load() {
				http.Error(w, "primary is broken", http.StatusInternalServerError)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
}

func TestRunBacksOffOnFailureAndResetsAfterSuccess(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	p := failingPrimary(t, &fail)
	mustSynthetic(t, p.repo, "example.com.", "main", 5)
	local := openRepo(t, t.TempDir())
	// No retries inside a pull, so every pull is one request and the
	// pulls counted are the loop's.
	c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = -1 })
	const interval = 20 * time.Millisecond
	const window = 800 * time.Millisecond
	c.Interval = interval
	c.MaxBackoff = 400 * time.Millisecond
	log := newPullLog()
	c.OnPull = log.onPull
	startRun(context.Background(), t, c)

	time.Sleep(window)
	failed := log.len()
	// Without backoff a pull every interval: window/interval = 40. With it
	// the waits are at least 20, 40, 80, 160, 200 ms (half of each doubled
	// wait, capped): pulls start no earlier than 0, 20, 60, 140, 300, 500,
	// 700 ms, at most 7 in the window.
	if failed < 2 || failed > 8 {
		t.Fatalf("%d pulls against a failing primary in %s at interval %s; want 2..8 with backoff (%d without)",
			failed, window, interval, int(window/interval))
	}
	log.mu.Lock()
	for i, err := range log.errs {
		if err == nil {
			t.Fatalf("pull %d against a primary answering 500 reported no error", i)
		}
		if !strings.Contains(err.Error(), p.url()) || !strings.Contains(err.Error(), "500") {
			t.Fatalf("pull %d error %q does not name the primary %s and its status", i, err, p.url())
		}
		if log.results[i] == nil || log.results[i].Primary != p.url() {
			t.Fatalf("pull %d result %+v does not name the primary", i, log.results[i])
		}
	}
	// The waits grow: the last gap is longer than the first.
	if n := len(log.at); n >= 3 {
		first, last := log.at[1].Sub(log.at[0]), log.at[n-1].Sub(log.at[n-2])
		if last <= first {
			t.Errorf("waits did not grow: first %s, last %s", first, last)
		}
	}
	log.mu.Unlock()

	// After a success the wait is Interval again: many pulls follow.
	fail.Store(false)
	log.waitFor(t, "successful pull after the primary recovered", func(_ []*replicate.PullResult, errs []error) bool {
		return len(errs) > 0 && errs[len(errs)-1] == nil
	})
	before := log.len()
	time.Sleep(window)
	// Still backing off, at most window/200ms = 4 pulls would follow.
	if after := log.len() - before; after < 8 {
		t.Fatalf("%d pulls in %s after a success at interval %s: the backoff was not reset", after, window, interval)
	}
}

func TestRunStopsPromptlyMidPull(t *testing.T) {
	for _, how := range []string{"Stop", "cancel"} {
		t.Run(how, func(t *testing.T) {
			entered := make(chan struct{}, 1)
			p := newPrimary(t, false, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// A slow primary: holds every request until the
					// client gives up on it.
					select {
					case entered <- struct{}{}:
					default:
					}
					select {
					case <-r.Context().Done():
					case <-time.After(hangBound):
					}
				})
			})
			local := openRepo(t, t.TempDir())
			c := newClient(t, p.url(), local, nil)
			c.Interval = time.Hour
			log := newPullLog()
			c.OnPull = log.onPull
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := startRun(ctx, t, c)
			select {
			case <-entered:
			case <-time.After(hangBound):
				t.Fatal("Run made no request")
			}
			start := time.Now()
			want := error(nil)
			if how == "Stop" {
				c.Stop()
			} else {
				cancel()
				want = context.Canceled
			}
			select {
			case <-done.done:
				err := done.err
				took := time.Since(start)
				t.Logf("Run returned %v in %s after %s mid-pull", err, took, how)
				if !errors.Is(err, want) || (want == nil && err != nil) {
					t.Fatalf("Run returned %v after %s, want %v", err, how, want)
				}
				if took > time.Second {
					t.Fatalf("Run took %s to return after %s mid-pull", took, how)
				}
			case <-time.After(hangBound):
				t.Fatalf("Run still running %s after %s mid-pull", hangBound, how)
			}
			if n := log.len(); n != 0 {
				t.Fatalf("the interrupted pull was reported (%d reports): it is not a failure of the primary", n)
			}
		})
	}
}

func TestRunStopsPromptlyInBackoffWait(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	p := failingPrimary(t, &fail)
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = -1 })
	c.Interval = time.Hour // the wait after the first failure is hours
	c.MaxBackoff = 4 * time.Hour
	log := newPullLog()
	c.OnPull = log.onPull
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startRun(ctx, t, c)
	log.waitFor(t, "failed pull", func(_ []*replicate.PullResult, errs []error) bool { return len(errs) == 1 && errs[0] != nil })
	start := time.Now()
	cancel()
	select {
	case <-done.done:
		if err := done.err; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v after its context was cancelled", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Run took %s to leave its wait after cancel", took)
		}
	case <-time.After(hangBound):
		t.Fatal("Run still waiting after its context was cancelled")
	}
}

func TestRunOnePullAtATime(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	var inRefs, maxInRefs atomic.Int32
	p := newPrimary(t, false, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/refs") {
				n := inRefs.Add(1)
				defer inRefs.Add(-1)
				for {
					m := maxInRefs.Load()
					if n <= m || maxInRefs.CompareAndSwap(m, n) {
						break
					}
				}
				entered <- struct{}{}
				<-release
			}
			h.ServeHTTP(w, r)
		})
	})
	h := mustSynthetic(t, p.repo, "example.com.", "main", 10)
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	c.Interval = time.Hour
	log := newPullLog()
	c.OnPull = log.onPull
	startRun(context.Background(), t, c)
	<-entered // Run's pull is in flight, held by the primary

	direct := make(chan error, 1)
	go func() {
		_, err := c.PullWith(context.Background(), replicate.PullOptions{})
		direct <- err
	}()
	select {
	case err := <-direct:
		t.Fatalf("PullWith returned (%v) while Run's pull was in flight", err)
	case <-entered:
		t.Fatal("PullWith reached the primary while Run's pull was in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-direct:
		if err != nil {
			t.Fatalf("PullWith after Run's pull: %v", err)
		}
	case <-time.After(hangBound):
		t.Fatal("PullWith never ran after Run's pull ended")
	}
	log.waitFor(t, "reported pull", branchMovedTo("example.com.", "main", h))
	if m := maxInRefs.Load(); m != 1 {
		t.Fatalf("%d refs requests were in flight at once; pulls overlapped", m)
	}
}

func TestNewClientBadURLDoesNotPanic(t *testing.T) {
	local := openRepo(t, t.TempDir())
	const bad = "ftp://primary.example"
	c := replicate.NewClient(bad, local)
	if err := c.Pull(context.Background()); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Pull from %q: %v, want an error naming the URL", bad, err)
	}
	c.Interval = 10 * time.Millisecond
	log := newPullLog()
	c.OnPull = log.onPull
	startRun(context.Background(), t, c)
	log.waitFor(t, "reported failure", func(_ []*replicate.PullResult, errs []error) bool { return len(errs) > 0 })
	log.mu.Lock()
	defer log.mu.Unlock()
	if err := log.errs[0]; err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Run reported %v for %q, want an error naming the URL", err, bad)
	}
}

// roundTripFunc is an http.RoundTripper that is not an *http.Transport.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// NewClient clones http.DefaultTransport; a program that replaced it with
// another type gets a client that reports why, not a panic. Not parallel:
// it swaps a process-wide variable.
func TestNewClientUnbuildableTransportDoesNotPanic(t *testing.T) {
	local := openRepo(t, t.TempDir())
	saved := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("must not be called")
	})
	const url = "http://127.0.0.1:1"
	c := replicate.NewClient(url, local)
	http.DefaultTransport = saved
	_, err := c.PullWith(context.Background(), replicate.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "DefaultTransport") || !strings.Contains(err.Error(), url) {
		t.Fatalf("pull with an unbuildable transport: %v, want the reason naming the primary", err)
	}
	if _, err := c.RefsInfo(context.Background()); err == nil {
		t.Fatal("RefsInfo with an unbuildable transport succeeded")
	}
}

// TestRunPullFunc: with PullFunc set, Run pulls with whatever selection it
// chooses each time, and a round with nothing to pull (nil, nil) is
// neither reported nor counted as a failure.
func TestRunPullFunc(t *testing.T) {
	p := newPrimary(t, false, nil)
	com := mustSynthetic(t, p.repo, "example.com.", "main", 5)
	org := mustSynthetic(t, p.repo, "example.org.", "main", 5)
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	c.Interval = 20 * time.Millisecond
	log := newPullLog()
	c.OnPull = log.onPull
	var zone atomic.Value // "" = nothing to pull
	zone.Store("")
	var calls atomic.Int64
	c.PullFunc = func(ctx context.Context) (*replicate.PullResult, error) {
		calls.Add(1)
		z := zone.Load().(string)
		if z == "" {
			return nil, nil
		}
		return c.PullWith(ctx, replicate.PullOptions{Zones: []string{z}})
	}
	startRun(context.Background(), t, c)
	deadline := time.Now().Add(hangBound)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not call PullFunc")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := log.len(); n != 0 {
		t.Errorf("%d rounds with nothing to pull were reported", n)
	}
	zone.Store("example.com.")
	log.waitFor(t, "pull of example.com.", branchMovedTo("example.com.", "main", com))
	zone.Store("example.org.")
	log.waitFor(t, "pull of example.org.", branchMovedTo("example.org.", "main", org))
	refs := localRefs(t, local)
	if refs["example.com./main"] != com.String() || refs["example.org./main"] != org.String() || len(refs) != 2 {
		t.Errorf("local refs %v", refs)
	}
}
