package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/server"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// TestPullZoneFlagUsage: a --zone that could match no zone (no trailing
// dot, upper case) is a usage error naming it and the fix, before anything
// is written.
func TestPullZoneFlagUsage(t *testing.T) {
	for _, tc := range []struct{ zone, want string }{
		{"example.com", `"example.com"`},
		{"Example.COM.", `"Example.COM."`},
		{"*.example.com", `"*.example.com"`},
	} {
		dir := filepath.Join(t.TempDir(), "replica")
		code, _, errs := runCLI(t, "pull", "--primary", "http://127.0.0.1:1", "--repo", dir, "--zone", tc.zone)
		fix := `use "` + strings.ToLower(strings.TrimSuffix(tc.zone, ".")) + `."`
		if code != exitUsage || !strings.Contains(errs, "--zone") || !strings.Contains(errs, tc.want) || !strings.Contains(errs, fix) {
			t.Errorf("--zone %s: exit %d, stderr %q; want 2 naming %s and suggesting %s", tc.zone, code, errs, tc.want, fix)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("--zone %s: the repository directory was created (%v)", tc.zone, err)
		}
	}
}

// TestPullExactBranchWithGlobCharacters: --branch "rel[1]" pulls the branch
// of that exact name, through the same selection as the provider.
func TestPullExactBranchWithGlobCharacters(t *testing.T) {
	r, err := repo.Open(t.TempDir(), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	want := map[string]repo.Hash{}
	for _, b := range []string{"rel[1]", "other"} {
		if want[b], err = repotest.SyntheticZone(r, "example.com.", b, 5); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer((&server.Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }}).Handler())
	t.Cleanup(srv.Close)

	dir := filepath.Join(t.TempDir(), "replica")
	code, out, errs := runCLI(t, "pull", "--primary", srv.URL, "--repo", dir, "--zone", "example.com.", "--branch", "rel[1]")
	if code != exitOK {
		t.Fatalf("pull: exit %d\n%s\n%s", code, out, errs)
	}
	local, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	got, err := local.Branches("")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "rel[1]" || got[0].Hash != want["rel[1]"] {
		t.Errorf("replica branches %+v, want only rel[1] at %s", got, want["rel[1]"].Short())
	}
}
