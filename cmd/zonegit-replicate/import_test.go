package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// runCLI runs one command line through dispatch, as main does.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeZoneFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.zone")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const cliZone = "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.10\n"

func TestImportCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	file := writeZoneFile(t, cliZone)

	code, out, errOut := runCLI(t, "import", "--repo", dir, "--zone", "example.com.", "--file", file, "-m", "first")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "commit ") || !strings.HasPrefix(lines[1], "tree ") {
		t.Fatalf("stdout %q: want a commit line and a tree line", out)
	}
	commit := repo.MustParseHash(strings.TrimPrefix(lines[0], "commit "))
	if !strings.Contains(errOut, "4 RRsets") {
		t.Errorf("stderr %q does not give the RRset count", errOut)
	}

	// The same file again, as JSON: nothing changes.
	code, out, errOut = runCLI(t, "import", "--repo", dir, "--zone", "example.com.", "--file", file, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	for _, k := range []string{"zone", "branch", "commit", "tree", "rrsets", "objects", "changed"} {
		if _, ok := res[k]; !ok {
			t.Errorf("--json output lacks %q: %s", k, out)
		}
	}
	if res["commit"] != commit.String() || res["changed"] != false || res["rrsets"] != float64(4) || res["branch"] != "main" {
		t.Errorf("re-import: %s; want commit %s unchanged with 4 RRsets on main", out, commit)
	}
	code, out, errOut = runCLI(t, "import", "--repo", dir, "--zone", "example.com.", "--file", file)
	if code != exitOK || !strings.Contains(errOut, "unchanged") || !strings.Contains(out, "commit "+commit.String()) {
		t.Errorf("plain re-import: exit %d, stdout %q, stderr %q; want the same commit, unchanged", code, out, errOut)
	}

	// A changed file on another branch.
	file2 := writeZoneFile(t, cliZone+"api IN A 192.0.2.20\n")
	code, out, errOut = runCLI(t, "import", "--repo", dir, "--zone", "example.com.", "--branch", "canary", "--file", file2, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res["changed"] != true || res["branch"] != "canary" || res["rrsets"] != float64(5) || res["objects"] != float64(1+5+4) {
		t.Errorf("canary import: %s", out)
	}

	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if tip, err := r.Branch("example.com.", "main"); err != nil || tip != commit {
		t.Errorf("main = %s, %v; want %s", tip, err, commit)
	}
	if tip, err := r.Branch("example.com.", "canary"); err != nil || tip.String() != res["commit"] {
		t.Errorf("canary = %s, %v; want %s", tip, err, res["commit"])
	}
}

func TestImportCLIErrors(t *testing.T) {
	good := writeZoneFile(t, cliZone)
	bad := writeZoneFile(t, cliZone+"www.example.org. IN A 192.0.2.1\n")
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no repo", []string{"--zone", "example.com.", "--file", good}, exitUsage, "--repo is required"},
		{"no zone", []string{"--repo", dir, "--file", good}, exitUsage, "--zone is required"},
		{"no file", []string{"--repo", dir, "--zone", "example.com."}, exitUsage, "--file is required"},
		{"zone without dot", []string{"--repo", dir, "--zone", "example.com", "--file", good}, exitUsage, `"example.com"`},
		{"uppercase zone", []string{"--repo", dir, "--zone", "Example.com.", "--file", good}, exitUsage, "lowercase"},
		{"bad branch", []string{"--repo", dir, "--zone", "example.com.", "--branch", "a/b", "--file", good}, exitUsage, `"a/b"`},
		{"stray argument", []string{"--repo", dir, "--zone", "example.com.", "--file", good, "extra"}, exitUsage, `"extra"`},
		{"unknown flag", []string{"--repo", dir, "--bogus"}, exitUsage, "bogus"},
		{"missing file", []string{"--repo", dir, "--zone", "example.com.", "--file", filepath.Join(dir, "nope.zone")}, exitFailed, "nope.zone"},
		{"record outside zone", []string{"--repo", dir, "--zone", "example.com.", "--file", bad}, exitFailed, "test.zone:7: www.example.org. A: owner is outside the zone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"import"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, c.code, errOut)
			}
			if !strings.Contains(errOut, c.want) {
				t.Errorf("stderr %q does not mention %q", errOut, c.want)
			}
			if out != "" {
				t.Errorf("stdout %q on failure", out)
			}
		})
	}
	if code, _, _ := runCLI(t, "import", "-h"); code != exitOK {
		t.Errorf("import -h: exit %d", code)
	}
}

func TestImportCLILocked(t *testing.T) {
	dir := t.TempDir()
	holder, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	code, _, errOut := runCLI(t, "import", "--repo", dir, "--zone", "example.com.", "--file", writeZoneFile(t, cliZone))
	if code != exitFailed || !strings.Contains(errOut, "in use by another process") {
		t.Errorf("exit %d, stderr %q; want 1 and a message that another process holds the repository", code, errOut)
	}
}

// TestImportCLIAuthor: the commit author comes from ZONEGIT_AUTHOR_NAME and
// ZONEGIT_AUTHOR_EMAIL, read by the CLI (package repo reads no environment),
// and falls back to repo's defaults when they are unset.
func TestImportCLIAuthor(t *testing.T) {
	author := func(t *testing.T) repo.Signature {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "repo")
		code, out, errOut := runCLI(t, "import", "--repo", dir, "--zone", "example.com.", "--file", writeZoneFile(t, cliZone))
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		h, err := repo.ParseHash(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "commit "))
		if err != nil {
			t.Fatalf("stdout %q: %v", out, err)
		}
		r, err := repo.Open(dir, repo.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, payload, err := r.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		c, err := repo.DecodeCommit(payload)
		if err != nil {
			t.Fatal(err)
		}
		return c.Author
	}
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv("ZONEGIT_AUTHOR_NAME", "Zone Admin")
		t.Setenv("ZONEGIT_AUTHOR_EMAIL", "admin@example.invalid")
		if a := author(t); a.Name != "Zone Admin" || a.Email != "admin@example.invalid" {
			t.Errorf("author %q <%s>, want the environment's", a.Name, a.Email)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		t.Setenv("ZONEGIT_AUTHOR_NAME", "")
		t.Setenv("ZONEGIT_AUTHOR_EMAIL", "")
		if a := author(t); a.Name != repo.DefaultAuthorName || a.Email != repo.DefaultAuthorEmail {
			t.Errorf("author %q <%s>, want repo's defaults", a.Name, a.Email)
		}
	})
}
