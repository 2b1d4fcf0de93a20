package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
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
	srv := httptest.NewServer((&replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }, Token: token}).Handler())
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
