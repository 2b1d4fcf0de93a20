package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/server"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// cliPrimary serves a repository with two zones over loopback.
func cliPrimary(t *testing.T, token string) (string, *repo.Repo) {
	t.Helper()
	r, err := repo.Open(t.TempDir(), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	for _, z := range []string{"example.com.", "other.test."} {
		if _, err := repotest.SyntheticZone(r, z, "main", 25); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer((&server.Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }, Token: token}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL, r
}

func TestPullCommand(t *testing.T) {
	url, primary := cliPrimary(t, "s3cret")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "replica")

	code, out, errs := runCLI(t, "pull", "--primary", url, "--repo", dir, "--token-file", tokenFile, "--zone", "example.*", "--json")
	if code != exitOK {
		t.Fatalf("pull: exit %d: %s", code, errs)
	}
	var res struct {
		Objects  int `json:"objects"`
		Branches []struct {
			Zone, Name, New string
			Error           string
		} `json:"branches"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	tip, _ := primary.Branch("example.com.", "main")
	if len(res.Branches) != 1 || res.Branches[0].New != tip.String() || res.Objects == 0 {
		t.Fatalf("result %+v", res)
	}

	// Text mode, everything; then a failing pin: exit 1 naming the branch,
	// while the rest is reported up to date.
	code, out, errs = runCLI(t, "pull", "--primary", url, "--repo", dir, "--token-file", tokenFile)
	if code != exitOK || !strings.Contains(out, "branch other.test./main: (none) -> ") || !strings.Contains(out, "example.com./main: up to date") {
		t.Fatalf("pull all: exit %d\n%s\n%s", code, out, errs)
	}
	bogus := strings.Repeat("ab", 32)
	code, _, errs = runCLI(t, "pull", "--primary", url, "--repo", dir, "--token-file", tokenFile, "--pin", "example.com./main="+bogus)
	if code != exitFailed || !strings.Contains(errs, "branch example.com./main: pin example.com./main="+bogus) {
		t.Fatalf("bad pin: exit %d\n%s", code, errs)
	}

	// Without the token: exit 1 and the server's answer.
	code, _, errs = runCLI(t, "pull", "--primary", url, "--repo", dir)
	if code != exitFailed || !strings.Contains(errs, "401 Unauthorized: check the token") {
		t.Fatalf("no token: exit %d\n%s", code, errs)
	}
}

func TestPullCommandUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", "--repo", dir}, "--primary is required"},
		{[]string{"pull", "--primary", "http://x"}, "--repo is required"},
		{[]string{"pull", "--primary", "ftp://x", "--repo", dir}, `"ftp://x"`},
		{[]string{"pull", "--primary", "http://x", "--repo", dir, "--pin", "example.com./main"}, `--pin "example.com./main"`},
		{[]string{"pull", "--primary", "http://x", "--repo", dir, "--pin", "example.com./main=zz"}, `"example.com./main"`},
		{[]string{"pull", "--primary", "http://x", "--repo", dir, "--zone", "[oops"}, `"[oops"`},
		{[]string{"pull", "--primary", "http://x", "--repo", dir, "--concurrency", "0"}, "--concurrency 0"},
		{[]string{"pull", "--primary", "http://x", "--repo", dir, "extra"}, `"extra"`},
		{[]string{"refs"}, "--primary is required"},
		{[]string{"refs", "--primary", "x"}, `"x"`},
		// A bad port is the command line's fault, found before any request
		// (it used to be retried as an unreachable primary).
		{[]string{"pull", "--primary", "http://127.0.0.1:99999", "--repo", dir}, `--primary: primary URL "http://127.0.0.1:99999": port 99999 out of range 1-65535`},
		{[]string{"refs", "--primary", "http://127.0.0.1:99999"}, `"http://127.0.0.1:99999": port 99999`},
		{[]string{"pull", "--primary", "http://:9354", "--repo", dir}, `"http://:9354": no host`},
		{[]string{"pull", "--primary", "http://127.0.0.1:9354", "--repo", dir, "--timeout", "-1s"}, "--timeout -1s"},
		{[]string{"refs", "--primary", "http://127.0.0.1:9354", "--timeout", "-1s"}, "--timeout -1s"},
		{[]string{"serve", "--repo", dir, "--max-concurrent", "0"}, "--max-concurrent 0: must be positive"},
		{[]string{"serve", "--repo", dir, "--max-queued", "-1"}, "--max-queued -1"},
		{[]string{"serve", "--repo", dir, "--queue-wait", "0s"}, "--queue-wait 0s"},
	} {
		code, _, errs := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}

func TestRefsCommand(t *testing.T) {
	url, primary := cliPrimary(t, "")
	code, out, errs := runCLI(t, "refs", "--primary", url, "--json")
	if code != exitOK {
		t.Fatalf("refs: exit %d: %s", code, errs)
	}
	var got struct {
		Zones        []string           `json:"zones"`
		Branches     []replicate.Branch `json:"branches"`
		Capabilities []string           `json:"capabilities"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	tip, _ := primary.Branch("other.test.", "main")
	if len(got.Zones) != 2 || len(got.Branches) != 2 || got.Branches[1].Hash != tip.String() || len(got.Capabilities) == 0 {
		t.Fatalf("refs --json: %+v", got)
	}
	code, out, _ = runCLI(t, "refs", "--primary", url)
	if code != exitOK || !strings.Contains(out, "branch  other.test.   main  "+tip.String()) {
		t.Fatalf("refs table: exit %d\n%s", code, out)
	}
	code, _, errs = runCLI(t, "refs", "--primary", "http://127.0.0.1:1")
	if code != exitFailed || !strings.Contains(errs, "unreachable") {
		t.Fatalf("unreachable: exit %d %s", code, errs)
	}
}

// hostilePrimary answers /v0/refs with body and every other path with
// 404, as a primary that lies on purpose would.
func hostilePrimary(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPullTimeoutCutsOffTricklingPrimary(t *testing.T) {
	// A refs body at one byte every 50ms keeps both the idle bound and, for
	// the first 30 s, the stall rule happy; --timeout ends the pull.
	url := hostilePrimary(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"zones":[`)
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := io.WriteString(w, " "); err != nil {
				return
			}
		}
	})
	for _, cmd := range [][]string{
		{"pull", "--primary", url, "--repo", filepath.Join(t.TempDir(), "replica"), "--timeout", "1s"},
		{"refs", "--primary", url, "--timeout", "1s"},
	} {
		start := time.Now()
		code, _, errs := runCLI(t, cmd...)
		took := time.Since(start)
		want := cmd[0] + " did not finish within --timeout 1s"
		if code != exitFailed || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", cmd[0], code, errs, want)
		}
		// The stall rule would have needed 30 s: this was the deadline.
		if took > 20*time.Second {
			t.Errorf("%s took %s", cmd[0], took)
		}
	}
}

func TestCommandsEscapePrimaryNames(t *testing.T) {
	// Names with escape sequences, newlines, a bell and a bidi override:
	// nothing of them may reach the terminal raw, and no name may add a
	// line to the output.
	hash := strings.Repeat("ab", 32)
	refs, err := json.Marshal(replicate.RefsResponse{
		Zones: []string{"evil\x1b[2J.", "ok."},
		Branches: []replicate.Branch{
			{Zone: "evil\x1b[2J.", Name: "ma\nin", Hash: hash},
			{Zone: "ok.", Name: "x\x1b]0;owned\x07", Hash: hash},
			{Zone: "ok.", Name: "rtl\u202egnp.exe", Hash: "\x1b[31m"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	url := hostilePrimary(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v0/refs" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(refs)
	})
	raw := func(s string) bool { return strings.ContainsAny(s, "\x1b\x07\u202e") }

	code, out, errs := runCLI(t, "refs", "--primary", url)
	if code != exitOK {
		t.Fatalf("refs: exit %d: %s", code, errs)
	}
	if raw(out) || strings.Count(out, "\n") != 4 {
		t.Errorf("refs printed raw control characters or extra lines:\n%q", out)
	}
	for _, want := range []string{`"evil\x1b[2J."`, `"ma\nin"`, `"x\x1b]0;owned\a"`, `"rtl\u202egnp.exe"`, `"\x1b[31m"`} {
		if !strings.Contains(out, want) {
			t.Errorf("refs output lacks %s:\n%s", want, out)
		}
	}

	code, out, errs = runCLI(t, "pull", "--primary", url, "--repo", filepath.Join(t.TempDir(), "replica"))
	if code != exitFailed {
		t.Fatalf("pull: exit %d\n%s\n%s", code, out, errs)
	}
	if raw(out) || raw(errs) {
		t.Errorf("pull printed raw control characters:\nstdout %q\nstderr %q", out, errs)
	}
	for _, line := range strings.Split(strings.TrimSpace(errs), "\n") {
		if !strings.HasPrefix(line, "zonegit-replicate pull: ") && !strings.HasPrefix(line, "pulled ") {
			t.Errorf("stderr line %q: a name broke a message across lines", line)
		}
	}
	if !strings.Contains(errs, `evil\x1b[2J.`) {
		t.Errorf("pull errors do not name the hostile zone (escaped):\n%s", errs)
	}
}

// TestPullKilledMidBulkLoad: the real binary's first pull into a new
// directory is a bulk load (compaction deferred to Close); SIGKILLed once
// it has flushed tables, it leaves no branch (or the whole one), fsck
// passes, and the next pull (an ordinary writer: the directory has tables
// now) compacts what the killed one left and converges.
func TestPullKilledMidBulkLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("imports and pulls 100k records")
	}
	bin := realCLI(t)
	primary := filepath.Join(t.TempDir(), "primary")
	tip, err := importBin(t, bin, primary, zoneText(1, 100_000))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeProc(t, bin, "--repo", primary)
	replica := filepath.Join(t.TempDir(), "replica")
	cmd := exec.Command(bin, "pull", "--primary", srv.url, "--repo", replica)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Kill it once a memtable has become a table (~80k objects of 200k).
	deadline := time.Now().Add(time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(replica, "*.sst")); len(m) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the pull ended (%v) before it flushed a table: %s", err, stderr.String())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the pull flushed no table within a minute")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the pull was not killed (%v): the test needs a slower pull", err)
	}

	if code, out, errOut := runBin(t, bin, "fsck", "--repo", replica); code != exitOK || !strings.HasPrefix(out, "ok:") {
		t.Errorf("fsck after the kill: exit %d: %s%s", code, out, errOut)
	}
	r, err := repo.Open(replica, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.Branch("example.com.", "main")
	if cerr := r.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	switch {
	case errors.Is(err, repo.ErrNotFound):
	case err != nil:
		t.Fatal(err)
	case h.String() != tip:
		t.Errorf("after the kill main = %s, want none or %s", h, tip)
	}

	code, _, errOut := runBin(t, bin, "pull", "--primary", srv.url, "--repo", replica)
	noCrash(t, "pull after the kill", errOut)
	if code != exitOK {
		t.Fatalf("pull after the kill: exit %d: %s", code, errOut)
	}
	if got := localTip(t, replica); got != tip {
		t.Errorf("main = %s after the second pull, want %s", got, tip)
	}
	if code, out, errOut := runBin(t, bin, "fsck", "--repo", replica); code != exitOK || !strings.HasPrefix(out, "ok:") {
		t.Errorf("fsck after the second pull: exit %d: %s%s", code, out, errOut)
	}
}
