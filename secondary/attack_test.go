package secondary_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
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
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// assertSound checks the daemon's replica with fsck (every ref's closure
// complete, every object intact), through the daemon's own handle.
func assertSound(t *testing.T, td *testDaemon) {
	t.Helper()
	r, release, err := td.d.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rep, err := r.Fsck(context.Background())
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("the replica is damaged: %+v", rep.Problems)
	}
}

// stateOf reads the state file's desired state.
func stateOf(t *testing.T, path string) *secondary.Desired {
	t.Helper()
	var st struct {
		Version int                `json:"version"`
		Replica string             `json:"replica"`
		Desired *secondary.Desired `json:"desired"`
		Updated string             `json:"updated"`
	}
	b := readFile(t, path)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil || st.Version != 1 {
		t.Fatalf("state file %s: %v: %s", path, err, b)
	}
	return st.Desired
}

// TestStateFileUnwritable: when the state file cannot be written (its
// directory gone, read-only or full), PUT and DELETE answer 500 naming the
// file before anything is pulled: the refs, the desired state and the
// state file stay as they were. Once writable again, the apply works.
func TestStateFileUnwritable(t *testing.T) {
	p := newTestPrimary(t)
	com1 := p.commit("example.com.", "main")
	stateDir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	td := startDaemon(t, p.url, daemonOptions{state: filepath.Join(stateDir, "s.json")})
	first := secondary.Desired{Zones: []string{"example.com."}}
	td.apply(t, secondary.ApplyRequest{Desired: first})
	before := readFile(t, td.state)
	pulls := len(mustPulls(t, td))
	p.commit("example.com.", "main")

	// The directory goes away (as root, permissions would not stop the
	// write; a directory that is not there stops everyone).
	away := stateDir + ".away"
	if err := os.Rename(stateDir, away); err != nil {
		t.Fatal(err)
	}
	var ce *secondary.ControlError
	_, err := td.ctl.Apply(context.Background(), secondary.ApplyRequest{Desired: secondary.Desired{Prune: true}})
	if !errors.As(err, &ce) || ce.Status != 500 || !strings.Contains(ce.Message, td.state) || !strings.Contains(ce.Message, "nothing was changed") {
		t.Fatalf("apply with the state unwritable: %v, want 500 naming %s", err, td.state)
	}
	if err := td.ctl.Clear(context.Background()); !errors.As(err, &ce) || ce.Status != 500 || !strings.Contains(ce.Message, td.state) {
		t.Fatalf("clear with the state unwritable: %v, want 500 naming %s", err, td.state)
	}
	st, err := td.ctl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Refs["example.com./main"] != com1 || st.Desired == nil || len(st.Desired.Zones) != 1 || st.Desired.Prune {
		t.Fatalf("after the refused requests: refs %v, desired %+v", st.Refs, st.Desired)
	}
	if n := len(mustPulls(t, td)); n != pulls {
		t.Errorf("%d pulls ran while the state could not be written", n-pulls)
	}
	if err := os.Rename(away, stateDir); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, td.state); !bytes.Equal(got, before) {
		t.Errorf("the state file changed:\n%s\nwas\n%s", got, before)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 1 {
		t.Errorf("the state directory holds %d entries, want the state file only", len(entries))
	}
	res := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Prune: true}})
	if res.Status.Refs["example.com./main"] == com1 || !stateOf(t, td.state).Prune {
		t.Errorf("apply once writable: %+v", res.Status)
	}
}

// TestStateFileShared: two daemons (two replicas) given one --state file
// cannot take each other's desired state: a daemon refuses to start on a
// state file another replica's daemon wrote, and a running one refuses to
// overwrite it (500, before pulling).
func TestStateFileShared(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	state := filepath.Join(t.TempDir(), "shared.json")
	a := startDaemon(t, p.url, daemonOptions{state: state})
	b := startDaemon(t, p.url, daemonOptions{state: state}) // the file does not exist yet
	a.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}}})
	before := readFile(t, state)

	var ce *secondary.ControlError
	_, err := b.ctl.Apply(context.Background(), secondary.ApplyRequest{Desired: secondary.Desired{Prune: true}})
	if !errors.As(err, &ce) || ce.Status != 500 || !strings.Contains(ce.Message, a.dir) || !strings.Contains(ce.Message, "must not share") {
		t.Fatalf("second daemon's apply on the shared state: %v", err)
	}
	if len(b.refs(t)) != 0 || len(mustPulls(t, b)) != 0 {
		t.Errorf("the refused apply pulled")
	}
	if got := readFile(t, state); !bytes.Equal(got, before) {
		t.Errorf("the shared state file changed")
	}
	b.stop()
	_, err = secondary.New(secondary.Config{Dir: b.dir, StatePath: state, ControlToken: "x",
		Primary: replicate.ClientOptions{PrimaryURL: p.url}})
	if err == nil || !strings.Contains(err.Error(), a.dir) || !strings.Contains(err.Error(), state) {
		t.Fatalf("a daemon starting on another replica's state file: %v", err)
	}
	// The daemon it belongs to starts on it.
	a.stop()
	a2 := startDaemon(t, p.url, daemonOptions{dir: a.dir, state: state})
	if d := a2.d.Desired(); d == nil || len(d.Zones) != 1 {
		t.Errorf("the owner restarted: desired %+v", d)
	}
}

// TestStateFileDamaged: a state file that is empty, cut short, followed
// by junk, or not a file stops New with an error naming it; temporary
// files a killed daemon left are removed at start; a state file damaged
// while the daemon runs is replaced by the next write.
func TestStateFileDamaged(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	td := startDaemon(t, p.url, daemonOptions{dir: dir})
	td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Prune: true}})
	good := readFile(t, td.state)
	td.stop()

	cfg := secondary.Config{Dir: dir, StatePath: td.state, ControlToken: "x", Primary: replicate.ClientOptions{PrimaryURL: p.url}}
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"empty", nil, "empty file"},
		{"cut short", good[:len(good)/2], "unexpected EOF"},
		{"junk after", append(append([]byte{}, good...), "}{"...), "after the JSON value"},
		{"binary", []byte{0, 1, 2, 0xff}, "invalid character"},
	} {
		if err := os.WriteFile(td.state, tc.content, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := secondary.New(cfg)
		if err == nil {
			d.Close()
		}
		if err == nil || !strings.Contains(err.Error(), td.state) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s and %q", tc.name, err, td.state, tc.want)
		}
	}
	if err := os.Remove(td.state); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(td.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if d, err := secondary.New(cfg); err == nil || !strings.Contains(err.Error(), td.state) {
		if d != nil {
			d.Close()
		}
		t.Errorf("a directory as the state file: %v", err)
	}
	if err := os.Remove(td.state); err != nil {
		t.Fatal(err)
	}

	// A killed write left a temporary file: it is removed, the state
	// file is what was renamed into place.
	if err := os.WriteFile(td.state, good, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(filepath.Dir(td.state), "."+filepath.Base(td.state)+".tmp-12345")
	if err := os.WriteFile(stale, good[:10], 0o600); err != nil {
		t.Fatal(err)
	}
	td2 := startDaemon(t, p.url, daemonOptions{dir: dir})
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale temporary file is still there: %v", err)
	}
	if d := td2.d.Desired(); d == nil || !d.Prune {
		t.Fatalf("desired after restart: %+v", d)
	}
	// Damaged while running: the next write replaces it.
	if err := os.WriteFile(td2.state, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	td2.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}}})
	if d := stateOf(t, td2.state); d == nil || len(d.Zones) != 1 {
		t.Errorf("state after the write: %+v", d)
	}
}

// TestControlPathTricks: dot segments, their escapes and doubled slashes
// never lead from one side (control, replication) to the other, and the
// read token never opens the control API nor the control token the
// replica.
func TestControlPathTricks(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	td := startDaemon(t, p.url, daemonOptions{readToken: "read-secret"})
	td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{}})
	before := readFile(t, td.state)
	u, err := netURL(td.url)
	if err != nil {
		t.Fatal(err)
	}
	// What each side's answer looks like: a control answer (status,
	// plan) and the replica's refs.
	controlAnswer := func(body string) bool { return strings.Contains(body, `"busy"`) || strings.Contains(body, `"desired"`) }
	replicaAnswer := func(body string) bool { return strings.Contains(body, `"branches"`) }
	for _, tc := range []struct {
		method, path, token string
		ok                  bool // a 2xx of the token's own side is allowed
	}{
		{"GET", "/control/v1/../../v0/refs", "read-secret", false},
		{"GET", "/control/v1/%2e%2e/%2e%2e/v0/refs", "read-secret", false},
		{"GET", "/control/v1/..%2f..%2fv0/refs", "read-secret", false},
		{"GET", "/v0/../control/v1/status", "read-secret", false},
		{"GET", "/v0/%2e%2e/control/v1/status", "read-secret", false},
		{"GET", "//control/v1/status", "read-secret", false},
		{"GET", "/control//v1/status", "read-secret", false},
		{"GET", "/control/v1//status", "read-secret", false},
		{"GET", "/CONTROL/v1/status", "read-secret", false},
		{"GET", "/control/v1/status/", "read-secret", false},
		{"DELETE", "/v0/../control/v1/desired", "read-secret", false},
		{"DELETE", "/control/v1/desired/.", "read-secret", false},
		{"GET", "/control/v1/../../v0/refs", controlToken, false},
		{"GET", "/v0/refs/../../control/v1/status", controlToken, true}, // control token, control endpoint: fine either way
		{"GET", "//v0/refs", controlToken, false},
		{"GET", "/v0//refs", controlToken, false},
		{"GET", "/control/v1/../v0/refs", controlToken, false},
	} {
		status, body := rawPath(t, u, tc.method, tc.path, tc.token)
		// The read token must never get a control answer (nor a 2xx to
		// a DELETE), the control token never the replica's refs.
		crossed := status/100 == 2 && ((tc.token != controlToken && (controlAnswer(body) || tc.method != "GET")) ||
			(tc.token == controlToken && replicaAnswer(body)))
		if crossed && !tc.ok {
			t.Errorf("%s %s with %s: %d %q, want a refusal", tc.method, tc.path, tc.token, status, body)
		}
		if status >= 500 {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, status, body)
		}
	}
	if got := readFile(t, td.state); !bytes.Equal(got, before) {
		t.Errorf("the state file changed")
	}
	if d := td.d.Desired(); d == nil {
		t.Errorf("a path trick cleared the desired state")
	}
}

func netURL(s string) (string, error) {
	if !strings.HasPrefix(s, "http://") {
		return "", fmt.Errorf("not http: %s", s)
	}
	return strings.TrimPrefix(s, "http://"), nil
}

// rawPath sends a request line as written (no client-side cleaning) and
// returns the status and body.
func rawPath(t *testing.T, addr, method, path, token string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", method, path, addr, token)
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// TestControlStorm: many PUT, DELETE, plan and status requests at once
// (with a slow primary, so that they pile up on the pull lock): the daemon
// answers each (200/204, or 503 for a request that gave up waiting), the
// state file always parses and ends equal to the desired state the daemon
// holds, and the replica is sound.
func TestControlStorm(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	p.commit("example.org.", "main")
	p.commit("example.net.", "dev")
	td := startDaemon(t, p.url, daemonOptions{follow: 50 * time.Millisecond})
	p.delay.Store(int64(5 * time.Millisecond))
	desireds := []secondary.Desired{
		{},
		{Zones: []string{"example.com."}, Prune: true},
		{Zones: []string{"example.org.", "example.net."}, Follow: true},
		{Branches: []string{"dev"}, Prune: true, Follow: true},
	}
	var wg sync.WaitGroup
	var answered, gaveUp atomic.Int32
	stop := make(chan struct{})
	// The state file is read while it is being replaced: never half.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b, err := os.ReadFile(td.state); err == nil {
				var v map[string]any
				if err := json.Unmarshal(b, &v); err != nil {
					t.Errorf("the state file read mid-storm does not parse: %v: %q", err, b)
					return
				}
			}
		}
	}()
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(50+i*20)*time.Millisecond)
			defer cancel()
			var err error
			switch i % 5 {
			case 0, 1:
				_, err = td.ctl.Apply(ctx, secondary.ApplyRequest{Desired: desireds[i%len(desireds)]})
			case 2:
				err = td.ctl.Clear(ctx)
			case 3:
				_, err = td.ctl.Plan(ctx, desireds[i%len(desireds)])
			case 4:
				_, err = td.ctl.Status(ctx)
			}
			var ce *secondary.ControlError
			switch {
			case err == nil:
				answered.Add(1)
			case errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable,
				errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
				gaveUp.Add(1)
			default:
				t.Errorf("request %d: %v", i, err)
			}
		}()
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d answered, %d gave up waiting", answered.Load(), gaveUp.Load())
	if answered.Load() == 0 {
		t.Fatal("no request was answered")
	}
	// Let the pull lock settle, then compare memory and file.
	td.apply(t, secondary.ApplyRequest{Desired: desireds[1]})
	st, err := td.ctl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if file := stateOf(t, td.state); file == nil || st.Desired == nil || !equalDesired(*file, *st.Desired) {
		t.Errorf("state file %+v, daemon %+v", file, st.Desired)
	}
	assertSound(t, td)
}

func equalDesired(a, b secondary.Desired) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestClearDuringApply: a DELETE sent while a PUT's pull runs waits for
// it; the PUT answers with its result, then the DELETE clears: the last
// word is the DELETE's, in memory and on disk, and nothing follows.
func TestClearDuringApply(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	p.commit("example.org.", "main")
	td := startDaemon(t, p.url, daemonOptions{follow: 100 * time.Millisecond})
	p.delay.Store(int64(100 * time.Millisecond))
	var res *secondary.ApplyResult
	var applyErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, applyErr = td.ctl.Apply(context.Background(), secondary.ApplyRequest{Desired: secondary.Desired{Follow: true}})
	}()
	waitFor(t, 5*time.Second, "the apply's pull running", func() bool {
		st, err := td.ctl.Status(context.Background())
		return err == nil && st.Busy
	})
	if err := td.ctl.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	if applyErr != nil || len(res.Status.Refs) != 2 || res.Status.Desired == nil {
		t.Fatalf("the apply: %v %+v", applyErr, res)
	}
	if d := td.d.Desired(); d != nil {
		t.Errorf("desired after the clear: %+v", d)
	}
	if d := stateOf(t, td.state); d != nil {
		t.Errorf("state file after the clear: %+v", d)
	}
	n := len(mustPulls(t, td))
	p.delay.Store(0)
	p.commit("example.com.", "main")
	time.Sleep(400 * time.Millisecond)
	if m := len(mustPulls(t, td)); m != n {
		t.Errorf("a cleared daemon pulled %d times", m-n)
	}
	assertSound(t, td)
}

// TestSlowControlClient: a client that sends its PUT body a byte at a
// time holds nothing: the body is read before the pull lock is taken, so
// another apply runs meanwhile, and the slow request is answered when
// its body is complete.
func TestSlowControlClient(t *testing.T) {
	p := newTestPrimary(t)
	com := p.commit("example.com.", "main")
	td := startDaemon(t, p.url, daemonOptions{})
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, td.url+secondary.ControlPath+"/desired", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+controlToken)
	slow := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	body := []byte(`{"desired":{"zones":["example.com."]}}`)
	if _, err := pw.Write(body[:5]); err != nil {
		t.Fatal(err)
	}
	// Meanwhile another client applies, and reads the status.
	res := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{}})
	if res.Status.Refs["example.com./main"] != com {
		t.Fatalf("the apply beside the slow client: %+v", res.Status.Refs)
	}
	for _, c := range body[5:] {
		if _, err := pw.Write([]byte{c}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pw.Close()
	if code := <-slow; code != 200 {
		t.Fatalf("the slow apply: %d", code)
	}
	if d := td.d.Desired(); d == nil || len(d.Zones) != 1 {
		t.Errorf("desired after the slow apply: %+v", d)
	}
}

// lyingPrimary serves p's answers through lie, which may rewrite them.
func lyingPrimary(t *testing.T, p *testPrimary, lie func(r *http.Request, status int, body []byte) []byte) string {
	t.Helper()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		proxyTo(t, p.url, rec, r)
		body := lie(r, rec.Code, rec.Body.Bytes())
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// TestHostilePrimary: a primary that corrupts objects, or advertises a
// tip it does not have, moves no ref of the daemon: the apply answers 200
// with the branch's error, the other branches apply, and the replica is
// sound; follow rounds do the same.
func TestHostilePrimary(t *testing.T) {
	p := newTestPrimary(t)
	com1 := p.commit("example.com.", "main")
	org1 := p.commit("example.org.", "main")
	var corrupt, phantom atomic.Bool
	missing := strings.Repeat("ef", 32)
	url := lyingPrimary(t, p, func(r *http.Request, status int, body []byte) []byte {
		if status != 200 {
			return body
		}
		if r.URL.Path == replicate.BasePath+"/refs" {
			if phantom.Load() {
				return bytes.Replace(body, []byte(org1), []byte(missing), 1)
			}
			return body
		}
		if corrupt.Load() && len(body) > 0 {
			b := append([]byte{}, body...)
			b[len(b)-1] ^= 0x55 // the last object's payload
			return b
		}
		return body
	})
	td := startDaemon(t, url, daemonOptions{follow: 100 * time.Millisecond})
	held := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{}}).Status.Refs
	if !maps.Equal(held, map[string]string{"example.com./main": com1, "example.org./main": org1}) {
		t.Fatalf("first apply: %v", held)
	}

	// Corrupted objects: nothing moves.
	p.commit("example.com.", "main")
	corrupt.Store(true)
	res := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{}})
	if !maps.Equal(res.Status.Refs, held) || res.Pull.Error == "" {
		t.Errorf("corrupt objects: refs %v (held %v), pull %+v", res.Status.Refs, held, res.Pull)
	}
	assertSound(t, td)
	corrupt.Store(false)

	// A tip the primary does not have: that branch fails, naming it; the
	// other moves; following does not move it either.
	phantom.Store(true)
	com2 := p.commit("example.com.", "main")
	res = td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Follow: true}})
	if res.Status.Refs["example.com./main"] != com2 || res.Status.Refs["example.org./main"] != org1 {
		t.Errorf("phantom tip: refs %v", res.Status.Refs)
	}
	if len(res.Pull.Errors) != 1 || res.Pull.Errors[0].Ref != "example.org./main" {
		t.Errorf("phantom tip: errors %+v", res.Pull.Errors)
	}
	time.Sleep(400 * time.Millisecond)
	if got := td.refs(t); got["example.org./main"] != org1 {
		t.Errorf("following a phantom tip moved the branch: %v", got)
	}
	assertSound(t, td)
}

// TestChainLoop: two daemons each following the other (a configuration
// mistake) converge on what they hold, answer every request, and shut
// down; a daemon following itself too.
func TestChainLoop(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	const interval = 50 * time.Millisecond
	// a first follows the real primary to get data, then b; b follows a.
	la, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aURL := "http://" + la.Addr().String()
	b := startDaemon(t, aURL, daemonOptions{follow: interval})
	a := startDaemon(t, b.url, daemonOptions{follow: interval})
	srv := &http.Server{Handler: a.d.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(la) }()
	t.Cleanup(func() { _ = srv.Close() })
	ctlA, err := secondary.NewControlClient(aURL, secondary.ControlOptions{Token: controlToken, RetryAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if _, err := ctlA.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Follow: true, Prune: true}}); err != nil {
			t.Fatalf("apply on a (%d): %v", i, err)
		}
		b.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Follow: true, Prune: true}})
	}
	time.Sleep(5 * interval)
	sa, err := ctlA.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sb := b.refs(t); !maps.Equal(sa.Refs, sb) {
		t.Errorf("the loop holds %v and %v", sa.Refs, sb)
	}

	// A daemon whose primary is itself.
	ls, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	selfURL := "http://" + ls.Addr().String()
	self := startDaemon(t, selfURL, daemonOptions{follow: interval})
	ss := &http.Server{Handler: self.d.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ss.Serve(ls) }()
	t.Cleanup(func() { _ = ss.Close() })
	res := self.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Follow: true, Prune: true}})
	if len(res.Status.Refs) != 0 || res.Pull.Error != "" {
		t.Errorf("a daemon following itself: %+v", res)
	}
	time.Sleep(3 * interval)
	self.stop()
	a.stop()
	b.stop()
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// TestControlClientNotADaemon: a control client pointed at a primary
// (which answers any path 200 with its banner) or at another server gets
// ErrNotDaemon from every call, never a success: a Clear there must not
// look like a cleared daemon.
func TestControlClientNotADaemon(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	for _, u := range []string{p.url, other.URL} {
		c, err := secondary.NewControlClient(u, secondary.ControlOptions{Token: controlToken, RetryAttempts: -1})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for name, call := range map[string]func() error{
			"status": func() error { _, err := c.Status(ctx); return err },
			"plan":   func() error { _, err := c.Plan(ctx, secondary.Desired{}); return err },
			"apply":  func() error { _, err := c.Apply(ctx, secondary.ApplyRequest{}); return err },
			"clear":  func() error { return c.Clear(ctx) },
			"offer":  func() error { _, err := c.Offer(ctx); return err },
			"pulls":  func() error { _, err := c.Pulls(ctx); return err },
		} {
			if err := call(); !errors.Is(err, secondary.ErrNotDaemon) || !strings.Contains(err.Error(), u) {
				t.Errorf("%s on %s: %v, want ErrNotDaemon naming the URL", name, u, err)
			}
		}
	}
}

// TestReplicaDirectoryGuards: a replica directory holding a foreign file
// is refused (naming the file, which stays), and so is a state file
// inside the replica directory (it would become such a foreign file).
func TestReplicaDirectoryGuards(t *testing.T) {
	p := newTestPrimary(t)
	dir := filepath.Join(t.TempDir(), "replica")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(foreign, []byte("zone {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := secondary.Config{Dir: dir, ControlToken: "x", Primary: replicate.ClientOptions{PrimaryURL: p.url}}
	if d, err := secondary.New(cfg); err == nil || !strings.Contains(err.Error(), "named.conf") {
		if d != nil {
			d.Close()
		}
		t.Errorf("a directory with a foreign file: %v", err)
	}
	if b, err := os.ReadFile(foreign); err != nil || string(b) != "zone {}\n" {
		t.Errorf("the foreign file changed: %v %q", err, b)
	}
	for _, state := range []string{filepath.Join(dir, "s.json"), filepath.Join(dir, "sub", "s.json"), dir} {
		cfg := secondary.Config{Dir: filepath.Join(t.TempDir(), "r"), ControlToken: "x", Primary: replicate.ClientOptions{PrimaryURL: p.url}}
		if state != dir {
			cfg.StatePath = strings.Replace(state, dir, cfg.Dir, 1)
		} else {
			cfg.StatePath = cfg.Dir
		}
		if d, err := secondary.New(cfg); err == nil || !strings.Contains(err.Error(), "inside the replica directory") {
			if d != nil {
				d.Close()
			}
			t.Errorf("state %s in replica %s: %v", cfg.StatePath, cfg.Dir, err)
		}
	}
	// Beside it, with a name that starts like it, is fine.
	cfg = secondary.Config{Dir: filepath.Join(t.TempDir(), "r"), ControlToken: "x", Primary: replicate.ClientOptions{PrimaryURL: p.url}}
	cfg.StatePath = cfg.Dir + "..json"
	d, err := secondary.New(cfg)
	if err != nil {
		t.Fatalf("a state file beside the directory: %v", err)
	}
	d.Close()
}

// countingZeros is an endless body of zeros that counts what was read.
type countingZeros struct{ n atomic.Int64 }

func (c *countingZeros) Read(p []byte) (int, error) {
	clear(p)
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// TestHugeBodies: an endless body is cut off early: without the control
// token nothing of it is read past what the server buffers (401), with it
// at the 1 MiB bound (413); the daemon keeps answering.
func TestHugeBodies(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	td := startDaemon(t, p.url, daemonOptions{})
	for _, tc := range []struct {
		token  string
		status int
	}{{"", 401}, {"wrong", 401}, {controlToken, 413}} {
		body := &countingZeros{}
		req, err := http.NewRequest(http.MethodPut, td.url+secondary.ControlPath+"/desired", io.NopCloser(body))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1 // chunked: the server cannot know the size up front
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("token %q: %v", tc.token, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("token %q: %d, want %d", tc.token, resp.StatusCode, tc.status)
		}
		// The client stops sending once the answer came; what it had sent
		// by then is bounded by the 1 MiB limit plus socket buffers.
		if n := body.n.Load(); n > 64<<20 {
			t.Errorf("token %q: %d bytes of an endless body were sent before the answer", tc.token, n)
		}
		t.Logf("token %q: %d, %d bytes sent", tc.token, resp.StatusCode, body.n.Load())
	}
	if _, err := td.ctl.Status(context.Background()); err != nil {
		t.Fatalf("the daemon after endless bodies: %v", err)
	}
	if td.d.Desired() != nil {
		t.Error("an endless body set a desired state")
	}
}
