package secondary_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// TestControlBadRequests: every bad control request gets the right 4xx
// with a message, and changes neither the state file nor the refs.
func TestControlBadRequests(t *testing.T) {
	p := newTestPrimary(t)
	main1 := p.commit("example.com.", "main")
	p.commit("example.org.", "main")
	td := startDaemon(t, p.url, daemonOptions{readToken: "read-secret"})
	td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}}})
	stateBefore := readFile(t, td.state)
	refsBefore := td.refs(t)
	if want := map[string]string{"example.com./main": main1}; !maps.Equal(refsBefore, want) {
		t.Fatalf("refs after the first apply: %v, want %v", refsBefore, want)
	}
	p.commit("example.com.", "main") // something a wrongly accepted request would pull

	base := td.url + secondary.ControlPath
	missing := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"no token", http.MethodGet, "/status", "", "", 401, "missing control token"},
		{"bad token", http.MethodPut, "/desired", "wrong", `{"desired":{}}`, 401, "wrong control token"},
		{"read token is not the control token", http.MethodDelete, "/desired", "read-secret", "", 401, "wrong control token"},
		{"bad JSON", http.MethodPut, "/desired", controlToken, `{"desired":`, 400, "request body"},
		{"not an object", http.MethodPost, "/plan", controlToken, `[1]`, 400, "request body"},
		{"trailing data", http.MethodPut, "/desired", controlToken, `{"desired":{}} {}`, 400, "after the JSON value"},
		{"stray closing brace", http.MethodPut, "/desired", controlToken, `{"desired":{}}}`, 400, "after the JSON value"},
		{"stray closing bracket", http.MethodPost, "/plan", controlToken, `{}]`, 400, "after the JSON value"},
		{"empty body", http.MethodPut, "/desired", controlToken, ``, 400, "empty"},
		{"deep nesting", http.MethodPost, "/plan", controlToken, strings.Repeat("[", 20000) + strings.Repeat("]", 20000), 400, "request body"},
		{"unknown field", http.MethodPut, "/desired", controlToken, `{"desired":{"zone":["example.com."]}}`, 400, `unknown field "zone"`},
		{"unknown top-level field", http.MethodPut, "/desired", controlToken, `{"desired":{},"primary":"http://evil"}`, 400, `unknown field "primary"`},
		{"zone without dot", http.MethodPut, "/desired", controlToken, `{"desired":{"zones":["example.com"]}}`, 400, "example.com"},
		{"upper-case zone", http.MethodPost, "/plan", controlToken, `{"zones":["Example.COM."]}`, 400, "Example.COM."},
		{"bad glob", http.MethodPut, "/desired", controlToken, `{"desired":{"zones":["[example.com."]}}`, 400, "[example.com."},
		{"bad branch", http.MethodPut, "/desired", controlToken, `{"desired":{"branches":["a/b"]}}`, 400, "a/b"},
		{"bad pin hash", http.MethodPut, "/desired", controlToken, `{"desired":{"pins":{"example.com./main":"xyz"}}}`, 400, "xyz"},
		{"bad pin key", http.MethodPost, "/plan", controlToken, `{"pins":{"nozone":"` + missing + `"}}`, 400, "nozone"},
		{"bad expect", http.MethodPut, "/desired", controlToken, `{"desired":{},"expect":{"example.com./main":"00"}}`, 400, "expect"},
		{"follow without --follow", http.MethodPut, "/desired", controlToken, `{"desired":{"follow":true}}`, 409, "--follow"},
		{"follow without --follow, plan", http.MethodPost, "/plan", controlToken, `{"follow":true}`, 409, "--follow"},
		{"pin the primary lacks", http.MethodPut, "/desired", controlToken, `{"desired":{"pins":{"example.com./main":"` + missing + `"}}}`, 422, missing},
		{"pin the primary lacks, plan", http.MethodPost, "/plan", controlToken, `{"pins":{"example.com./main":"` + missing + `"}}`, 422, `"example.com./main"`},
		{"wrong method", http.MethodPost, "/status", controlToken, "", 405, "not allowed"},
		{"unknown path", http.MethodGet, "/nothing", controlToken, "", 404, "/nothing"},
		{"body too large", http.MethodPut, "/desired", controlToken, `{"desired":{"zones":["` + strings.Repeat("a", 2<<20) + `"]}}`, 413, "larger than"},
	} {
		status, msg := rawRequest(t, tc.method, base+tc.path, tc.token, []byte(tc.body))
		if status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, status, msg, tc.status, tc.msg)
		}
		if got := readFile(t, td.state); !bytes.Equal(got, stateBefore) {
			t.Fatalf("%s: the state file changed:\n%s\nwas\n%s", tc.name, got, stateBefore)
		}
		if got := td.refs(t); !maps.Equal(got, refsBefore) {
			t.Fatalf("%s: refs changed: %v, were %v", tc.name, got, refsBefore)
		}
	}

	// The control token does not open the read side, the read token does.
	if status, _ := rawRequest(t, http.MethodGet, td.url+replicate.BasePath+"/refs", controlToken, nil); status != 401 {
		t.Errorf("GET /v0/refs with the control token: %d, want 401", status)
	}
	if status, _ := rawRequest(t, http.MethodGet, td.url+replicate.BasePath+"/refs", "read-secret", nil); status != 200 {
		t.Errorf("GET /v0/refs with the read token: %d, want 200", status)
	}

	// The client reports the daemon's answer as a *ControlError.
	_, err := td.ctl.Plan(context.Background(), secondary.Desired{Zones: []string{"example.com"}})
	var ce *secondary.ControlError
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Message, "example.com") || !strings.Contains(err.Error(), td.url) {
		t.Errorf("client error: %v", err)
	}
	bad, err := secondary.NewControlClient(td.url, secondary.ControlOptions{Token: "wrong", RetryAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Status(context.Background()); !errors.As(err, &ce) || ce.Status != 401 {
		t.Errorf("client with a wrong token: %v", err)
	}
}

// TestApplyExpect: an apply with Expect moves exactly to Expect even when
// the primary moved after the plan; a branch that cannot be pulled is
// reported per branch in the result while the others are applied; pins
// hold a branch back.
func TestApplyExpect(t *testing.T) {
	p := newTestPrimary(t)
	com1 := p.commit("example.com.", "main")
	org1 := p.commit("example.org.", "main")
	td := startDaemon(t, p.url, daemonOptions{})
	ctx := context.Background()

	plan, err := td.ctl.Plan(ctx, secondary.Desired{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"example.com./main": com1, "example.org./main": org1}
	if !maps.Equal(plan.Refs, want) || len(plan.Current) != 0 || plan.Primary != p.url {
		t.Fatalf("plan: %+v, want refs %v", plan, want)
	}
	// The primary moves after the plan: the apply still produces the plan.
	com2 := p.commit("example.com.", "main")
	p.commit("example.net.", "main")
	res := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{}, Expect: plan.Refs})
	if !maps.Equal(res.Status.Refs, want) || res.Pull.Error != "" || res.Pull.Trigger != secondary.TriggerApply {
		t.Fatalf("apply with expect: refs %v, pull %+v; want %v", res.Status.Refs, res.Pull, want)
	}
	if len(res.Pull.Moved) != 2 || res.Pull.Objects == 0 || res.Pull.Bytes == 0 {
		t.Errorf("pull report: %+v", res.Pull)
	}
	if res.Status.Desired == nil || res.Status.Desired.Follow {
		t.Errorf("desired after apply: %+v", res.Status.Desired)
	}

	// One branch cannot be pulled (the primary lacks the expected commit):
	// it is reported, the other is applied, and the answer is 200.
	missing := strings.Repeat("cd", 32)
	res = td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{},
		Expect: map[string]string{"example.com./main": com2, "example.org./main": missing}})
	if res.Status.Refs["example.com./main"] != com2 || res.Status.Refs["example.org./main"] != org1 {
		t.Errorf("partial apply: refs %v", res.Status.Refs)
	}
	if len(res.Pull.Errors) != 1 || res.Pull.Errors[0].Ref != "example.org./main" || res.Pull.Error == "" {
		t.Errorf("partial apply: errors %+v, error %q", res.Pull.Errors, res.Pull.Error)
	}
	if _, ok := res.Status.Refs["example.net./main"]; ok {
		t.Errorf("a branch outside expect was pulled: %v", res.Status.Refs)
	}

	// A pin holds example.com./main at com1 while the rest follow the
	// primary (apply without expect plans now, as zonegit_replica does).
	org2 := p.commit("example.org.", "main")
	pinned := secondary.Desired{Pins: map[string]string{"example.com./main": com1}, Prune: true}
	plan, err = td.ctl.Plan(ctx, pinned)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Refs["example.com./main"] != com1 || plan.Refs["example.org./main"] != org2 || plan.Refs["example.net./main"] == "" {
		t.Fatalf("pinned plan: %v", plan.Refs)
	}
	res = td.apply(t, secondary.ApplyRequest{Desired: pinned})
	if !maps.Equal(res.Status.Refs, plan.Refs) || res.Pull.Error != "" {
		t.Errorf("pinned apply: %v, want %v (%+v)", res.Status.Refs, plan.Refs, res.Pull)
	}
	pulls, err := td.ctl.Pulls(ctx)
	if err != nil || len(pulls) != 3 || pulls[0].Started.Before(pulls[2].Started) {
		t.Errorf("pulls: %v %+v", err, pulls)
	}
	// The log has a line per pull.
	if n := strings.Count(td.log.String(), "pull trigger=apply"); n != 3 {
		t.Errorf("%d pull log lines, want 3:\n%s", n, td.log.String())
	}
	// Offer is the primary's refs.
	offer, err := td.ctl.Offer(ctx)
	if err != nil || len(offer.Branches) != 3 {
		t.Errorf("offer: %v %+v", err, offer)
	}
	// Clear forgets the desired state and keeps the data.
	if err := td.ctl.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := td.ctl.Status(ctx)
	if err != nil || st.Desired != nil || !maps.Equal(st.Refs, plan.Refs) {
		t.Errorf("after clear: %v %+v", err, st)
	}
}

// TestFollow: with --follow, a commit on the primary reaches a following
// daemon within two intervals; a pinned branch does not move; Follow=false
// holds the applied refs.
func TestFollow(t *testing.T) {
	const interval = 300 * time.Millisecond
	p := newTestPrimary(t)
	com1 := p.commit("example.com.", "main")
	p.commit("example.org.", "main")
	td := startDaemon(t, p.url, daemonOptions{follow: interval})
	res := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Follow: true, Pins: map[string]string{"example.com./main": com1}}})
	if res.Status.Follow != interval.String() {
		t.Errorf("status follow %q", res.Status.Follow)
	}
	org2 := p.commit("example.org.", "main")
	p.commit("example.com.", "main")
	// Two intervals, plus the pull itself (a few milliseconds here; the
	// margin is for a loaded machine).
	took := waitFor(t, 2*interval+2*time.Second, "a commit reaching the following daemon", func() bool {
		return td.refs(t)["example.org./main"] == org2
	})
	t.Logf("the commit arrived after %s (interval %s)", took.Round(time.Millisecond), interval)
	if got := td.refs(t)["example.com./main"]; got != com1 {
		t.Errorf("pinned branch moved to %s", got)
	}
	// A ref moves as soon as its closure is stored, before the pull has
	// ended and been recorded: the report that moved it comes with the
	// end of the pull (status says busy until then).
	var last secondary.PullReport
	waitFor(t, 5*time.Second, "the follow pull's report", func() bool {
		pulls := mustPulls(t, td)
		last = pulls[0]
		return slices.ContainsFunc(last.Moved, func(m secondary.RefMove) bool { return m.New == org2 })
	})
	if last.Trigger != secondary.TriggerFollow && last.Trigger != secondary.TriggerStart {
		t.Errorf("the pull that moved the branch: trigger %q, want follow: %+v", last.Trigger, last)
	}

	// Follow = false: the refs hold.
	held := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Follow: false}})
	n := len(mustPulls(t, td))
	p.commit("example.org.", "main")
	time.Sleep(3 * interval)
	if got := td.refs(t); !maps.Equal(got, held.Status.Refs) {
		t.Errorf("follow=false moved: %v, held %v", got, held.Status.Refs)
	}
	if m := len(mustPulls(t, td)); m != n {
		t.Errorf("follow=false: %d pulls, were %d", m, n)
	}
}

func mustPulls(t *testing.T, td *testDaemon) []secondary.PullReport {
	t.Helper()
	pulls, err := td.ctl.Pulls(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pulls
}

// TestRestart: the desired state survives a restart, and following
// resumes; a second daemon on the same directory is refused.
func TestRestart(t *testing.T) {
	const interval = 200 * time.Millisecond
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	td := startDaemon(t, p.url, daemonOptions{dir: dir, follow: interval})
	desired := secondary.Desired{Zones: []string{"example.com."}, Prune: true, Follow: true}
	td.apply(t, secondary.ApplyRequest{Desired: desired})

	// Only one writer.
	_, err := secondary.New(secondary.Config{Dir: dir, StatePath: filepath.Join(t.TempDir(), "other.json"),
		Primary: replicate.ClientOptions{PrimaryURL: p.url}, ControlToken: "x"})
	if !errors.Is(err, repo.ErrLocked) {
		t.Errorf("second daemon on the directory: %v, want ErrLocked", err)
	}

	td.stop()
	com2 := p.commit("example.com.", "main")
	td2 := startDaemon(t, p.url, daemonOptions{dir: dir, follow: interval})
	st, err := td2.ctl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Desired == nil || !st.Desired.Follow || !st.Desired.Prune || len(st.Desired.Zones) != 1 {
		t.Fatalf("desired state after restart: %+v", st.Desired)
	}
	waitFor(t, 2*interval+2*time.Second, "following after a restart", func() bool {
		return td2.refs(t)["example.com./main"] == com2
	})
	if pulls := mustPulls(t, td2); pulls[len(pulls)-1].Trigger != secondary.TriggerStart {
		t.Errorf("first pull after restart: %+v", pulls[len(pulls)-1])
	}
}

// TestChain: a daemon whose primary is another daemon converges to the
// same refs, reading through the first one's read token.
func TestChain(t *testing.T) {
	const interval = 200 * time.Millisecond
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	p.commit("example.org.", "dev")
	first := startDaemon(t, p.url, daemonOptions{follow: interval})
	first.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Follow: true}})

	log := &syncBuffer{}
	d, err := secondary.New(secondary.Config{
		Dir: filepath.Join(t.TempDir(), "second"), Follow: interval, ControlToken: controlToken,
		Primary: replicate.ClientOptions{PrimaryURL: first.url, RetryAttempts: -1},
		Logf:    log.printf,
	})
	if err != nil {
		t.Fatal(err)
	}
	tsURL, stop := serveDaemon(t, d)
	defer stop()
	ctl, err := secondary.NewControlClient(tsURL, secondary.ControlOptions{Token: controlToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Follow: true}}); err != nil {
		t.Fatal(err)
	}
	same := func() bool {
		st, err := ctl.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return maps.Equal(st.Refs, first.refs(t)) && len(st.Refs) == 2
	}
	waitFor(t, time.Second, "the chain converging", same)
	// A commit on the primary goes down the chain.
	tip := p.commit("example.com.", "main")
	waitFor(t, 4*interval+3*time.Second, "a commit reaching the end of the chain", func() bool {
		return same() && first.refs(t)["example.com./main"] == tip
	})
}

// TestBusy: two PUT /desired at once run one after the other: their pulls
// never overlap.
func TestBusy(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	p.commit("example.org.", "main")
	td := startDaemon(t, p.url, daemonOptions{})
	p.delay.Store(int64(150 * time.Millisecond))

	var wg sync.WaitGroup
	results := make([]*secondary.ApplyResult, 2)
	errs := make([]error, 2)
	for i, zone := range []string{"example.com.", "example.org."} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = td.ctl.Apply(context.Background(), secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{zone}}})
		}()
	}
	// While one runs, status says busy.
	waitFor(t, 5*time.Second, "status busy", func() bool {
		st, err := td.ctl.Status(context.Background())
		return err == nil && st.Busy
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	a, b := results[0].Pull, results[1].Pull
	if b.Started.Before(a.Started) {
		a, b = b, a
	}
	aEnd := a.Started.Add(time.Duration(a.DurationMS) * time.Millisecond)
	if b.Started.Before(aEnd) {
		t.Errorf("pulls overlap: %s+%dms and %s", a.Started, a.DurationMS, b.Started)
	}
	if a.DurationMS < 150 || b.DurationMS < 150 {
		t.Errorf("pulls were not slowed down: %d ms, %d ms", a.DurationMS, b.DurationMS)
	}
}

// TestStateFile: the desired state is written with mode 0600 beside the
// replica, never inside it; a state file the daemon cannot read, or one in
// a directory that does not exist, stops New with an error naming it
// instead of starting without the operator's state.
func TestStateFile(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	td := startDaemon(t, p.url, daemonOptions{dir: dir})
	td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}, Prune: true}})
	if td.state != dir+".secondary.json" {
		t.Fatalf("default state path %s", td.state)
	}
	fi, err := os.Stat(td.state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", err, fi)
	}
	info, err := repo.InspectDir(dir)
	if err != nil || len(info.Foreign) != 0 {
		t.Errorf("replica directory holds foreign files: %v %+v", err, info.Foreign)
	}
	var st struct {
		Version int               `json:"version"`
		Desired secondary.Desired `json:"desired"`
	}
	if err := json.Unmarshal(readFile(t, td.state), &st); err != nil || st.Version != 1 || !st.Desired.Prune {
		t.Errorf("state file content: %v %+v", err, st)
	}
	td.stop()

	cfg := func(state string) secondary.Config {
		return secondary.Config{Dir: dir, StatePath: state, ControlToken: "x", Primary: replicate.ClientOptions{PrimaryURL: p.url}}
	}
	for _, tc := range []struct{ name, content, want string }{
		{"not JSON", "{", "unexpected EOF"},
		{"unknown field", `{"version":1,"desired":null,"primary":"http://x"}`, `unknown field "primary"`},
		{"other version", `{"version":2,"desired":null}`, "version 2"},
		{"invalid zone", `{"version":1,"desired":{"zones":["Example."],"prune":false,"follow":false}}`, "Example."},
	} {
		path := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := secondary.New(cfg(path))
		if err == nil {
			d.Close()
		}
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s and %q", tc.name, err, path, tc.want)
		}
	}
	missing := filepath.Join(t.TempDir(), "no", "state.json")
	if d, err := secondary.New(cfg(missing)); err == nil || !strings.Contains(err.Error(), missing) {
		if d != nil {
			d.Close()
		}
		t.Errorf("state in a missing directory: %v", err)
	}
}

// TestPrimaryDown: with the primary unreachable, plan, apply and offer
// answer 502 naming the primary, and an apply changes neither the state
// file nor the refs.
func TestPrimaryDown(t *testing.T) {
	p := newTestPrimary(t)
	p.commit("example.com.", "main")
	// A primary that stops answering: the daemon keeps its URL.
	var down atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			// Drop the connection: "unreachable" as the client sees it.
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Error("no hijacker")
				return
			}
			c, _, err := hj.Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		proxyTo(t, p.url, w, r)
	}))
	t.Cleanup(front.Close)
	td := startDaemon(t, front.URL, daemonOptions{})
	first := td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{}})
	stateBefore := readFile(t, td.state)
	st, err := td.ctl.Status(context.Background())
	if err != nil || st.LastPull == nil || st.LastPull.Objects != first.Pull.Objects || st.LastPull.Trigger != secondary.TriggerApply {
		t.Fatalf("status after the first apply: %v %+v", err, st)
	}

	down.Store(true)
	ctx := context.Background()
	var ce *secondary.ControlError
	for name, call := range map[string]func() error{
		"plan": func() error { _, err := td.ctl.Plan(ctx, secondary.Desired{Prune: true}); return err },
		"apply": func() error {
			_, err := td.ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Prune: true}})
			return err
		},
		"apply with expect": func() error {
			_, err := td.ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Prune: true}, Expect: first.Status.Refs})
			return err
		},
		"offer": func() error { _, err := td.ctl.Offer(ctx); return err },
	} {
		err := call()
		if !errors.As(err, &ce) || ce.Status != http.StatusBadGateway || !strings.Contains(ce.Message, front.URL) {
			t.Errorf("%s with the primary down: %v, want 502 naming %s", name, err, front.URL)
		}
		if got := readFile(t, td.state); !bytes.Equal(got, stateBefore) {
			t.Errorf("%s: the state file changed", name)
		}
		if got := td.refs(t); !maps.Equal(got, first.Status.Refs) {
			t.Errorf("%s: refs changed: %v", name, got)
		}
	}
}

// proxyTo forwards r to base (a minimal reverse proxy for one test).
func proxyTo(t *testing.T, base string, w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), r.Body)
	if err != nil {
		t.Error(err)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
