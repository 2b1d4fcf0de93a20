package secondary_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

const controlToken = "control-secret"

// testPrimary is a real repository served over loopback by
// replicate.Server. delay, when set, slows every object request (walk,
// pack, batch, single objects) so that a pull takes a while.
type testPrimary struct {
	t     *testing.T
	r     *repo.Repo
	url   string
	delay atomic.Int64 // nanoseconds
	mu    sync.Mutex
	seq   int
}

func newTestPrimary(t *testing.T) *testPrimary {
	t.Helper()
	r, err := repo.Open(filepath.Join(t.TempDir(), "primary"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &testPrimary{t: t, r: r}
	srv := &replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if d := p.delay.Load(); d > 0 && req.URL.Path != replicate.BasePath+"/refs" {
			time.Sleep(time.Duration(d))
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		ts.Close()
		r.Close()
	})
	p.url = ts.URL
	return p
}

// commit makes a new commit on zone/branch (a new zone the first time)
// and returns its hash.
func (p *testPrimary) commit(zone, branch string) string {
	p.t.Helper()
	p.mu.Lock()
	p.seq++
	n := p.seq
	p.mu.Unlock()
	var h repo.Hash
	var err error
	if _, berr := p.r.Branch(zone, branch); berr != nil {
		h, err = repotest.SyntheticZone(p.r, zone, branch, 5)
	} else {
		h, err = repotest.SetA(p.r, zone, branch, []string{"www"}, 300, [4]byte{10, 0, byte(n >> 8), byte(n)})
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return h.String()
}

// testDaemon is an in-process daemon on loopback.
type testDaemon struct {
	d     *secondary.Daemon
	url   string
	dir   string
	state string
	ctl   *secondary.ControlClient
	ts    *httptest.Server
	log   *syncBuffer
}

type daemonOptions struct {
	dir, state string
	follow     time.Duration
	readToken  string
}

func startDaemon(t *testing.T, primaryURL string, o daemonOptions) *testDaemon {
	t.Helper()
	if o.dir == "" {
		o.dir = filepath.Join(t.TempDir(), "replica")
	}
	log := &syncBuffer{}
	d, err := secondary.New(secondary.Config{
		Dir: o.dir, StatePath: o.state, Primary: replicate.ClientOptions{PrimaryURL: primaryURL, RetryAttempts: -1},
		Follow: o.follow, ControlToken: controlToken, ReadToken: o.readToken,
		Logf: func(format string, args ...any) { log.printf(format, args...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(d.Handler())
	td := &testDaemon{d: d, url: ts.URL, dir: o.dir, state: o.state, ts: ts, log: log}
	if td.state == "" {
		td.state = secondary.DefaultStatePath(o.dir)
	}
	td.ctl, err = secondary.NewControlClient(ts.URL, secondary.ControlOptions{Token: controlToken, RetryAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(td.stop)
	return td
}

// stop shuts the daemon down (twice is harmless).
func (td *testDaemon) stop() {
	td.ts.Close()
	if err := td.d.Close(); err != nil {
		panic(fmt.Sprintf("closing the daemon: %v", err))
	}
}

func (td *testDaemon) refs(t *testing.T) map[string]string {
	t.Helper()
	st, err := td.ctl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Refs
}

func (td *testDaemon) apply(t *testing.T, req secondary.ApplyRequest) *secondary.ApplyResult {
	t.Helper()
	res, err := td.ctl.Apply(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// rawRequest sends a control request as given and returns the status and
// the decoded {"error"} message.
func rawRequest(t *testing.T, method, url, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if resp.StatusCode/100 != 2 && strings.Contains(url, secondary.ControlPath) {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s %s: %d with a body that is not {\"error\"}: %q", method, url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, e.Error
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.b, format+"\n", args...)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveDaemon serves d on loopback; stop closes the server and d.
func serveDaemon(t *testing.T, d *secondary.Daemon) (string, func()) {
	t.Helper()
	ts := httptest.NewServer(d.Handler())
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ts.Close()
			if err := d.Close(); err != nil {
				t.Errorf("closing the daemon: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ts.URL, stop
}
