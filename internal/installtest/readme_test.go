//go:build !windows

package installtest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// snippetMarker precedes the README's getting-started block.
const snippetMarker = "<!-- internal/installtest runs this block"

// readmePort is the primary's port in the README. The test serves on a
// free port instead, so that it never collides with anything else on the
// machine; that is the only change made to the block.
const readmePort = "127.0.0.1:9354"

// TestAccInstall_readme (issue 12.1) runs the README's getting-started
// block as a newcomer would: in the clone, with a home directory of its own
// and no CLI configuration (no TF_CLI_CONFIG_FILE, no ~/.terraformrc), no
// network (every proxy points at a closed port, and Go's module proxy is
// off), and the CLI under test as `terraform` on PATH. `make install` must
// put the provider where `init` finds it, `init` must install it and write
// a lock file, and `plan` and `apply` must replicate the primary the block
// starts with `zonegit-replicate serve`. Then the upgrade path of the
// installing guide: install a newer version, `init -upgrade` selects it,
// and the replica's state works with it.
func TestAccInstall_readme(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make testacc runs it on every CLI)")
	}
	cli := terraformCLI(t)
	host := "registry.terraform.io"
	if isOpenTofu(t, cli) {
		host = "registry.opentofu.org"
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	snippet := readmeSnippet(t, filepath.Join(root, "README.md"))
	if n := strings.Count(snippet, readmePort); n < 2 {
		t.Fatalf("the README block names %s %d times; want the serve address and the provider's primary_url", readmePort, n)
	}
	version := readVersion(t, filepath.Join(root, "VERSION"))

	home := t.TempDir()
	env := newcomerEnv(t, home, cli)
	script := strings.ReplaceAll(snippet, readmePort, freeAddr(t))
	start := time.Now()
	out := run(t, root, env, "bash", "-euo", "pipefail", "-c", script)
	t.Logf("README block on %s: %s", host, time.Since(start).Round(time.Millisecond))

	tfDir := filepath.Join(home, "zonegit-quickstart", "tf")
	pluginDir := filepath.Join(home, ".terraform.d", "plugins")
	if !strings.Contains(out, "Installing zonegit/zonegit v"+version) {
		t.Errorf("init did not install zonegit/zonegit v%s:\n%s", version, out)
	}
	if !strings.Contains(out, "Apply complete! Resources: 1 added") {
		t.Errorf("apply did not create the replica:\n%s", out)
	}
	checkLock(t, filepath.Join(tfDir, ".terraform.lock.hcl"), host, version)
	// init links (or copies) the package it installed from the plugin
	// directory into .terraform/providers.
	platform := filepath.Join(host, "zonegit", "zonegit", version, goEnv(t, "GOOS")+"_"+goEnv(t, "GOARCH"))
	if got, err := filepath.EvalSymlinks(filepath.Join(tfDir, ".terraform", "providers", platform)); err != nil {
		t.Errorf("installed provider: %v", err)
	} else if got != filepath.Join(pluginDir, platform) {
		if _, err := os.Stat(filepath.Join(got, "terraform-provider-zonegit_v"+version)); err != nil {
			t.Errorf("installed provider at %s is neither a link into %s nor a copy: %v", got, pluginDir, err)
		}
	}
	// The replica holds the commit the block imported on the primary.
	m := regexp.MustCompile(`(?m)^commit ([0-9a-f]{64})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no commit line from zonegit-replicate import:\n%s", out)
	}
	if got := branchTip(t, filepath.Join(tfDir, "secondary"), "example.com.", "main"); got != m[1] {
		t.Errorf("replica example.com./main = %s, want the imported commit %s", got, m[1])
	}

	// Upgrading, as docs/guides/installing-and-upgrading.md says: install
	// the newer version, then init -upgrade in the configuration. The
	// primary is stopped by now; a plan without refresh needs none and
	// shows the state works with the new version: no changes (exit 0).
	next := nextPatch(t, version)
	run(t, root, env, "make", "install", "PROVIDER_VERSION="+next)
	out = run(t, tfDir, env, "terraform", "init", "-upgrade", "-input=false", "-no-color")
	if !strings.Contains(out, "Installing zonegit/zonegit v"+next) {
		t.Errorf("init -upgrade did not install v%s:\n%s", next, out)
	}
	checkLock(t, filepath.Join(tfDir, ".terraform.lock.hcl"), host, next)
	run(t, tfDir, env, "terraform", "plan", "-refresh=false", "-detailed-exitcode", "-input=false", "-no-color")
}

// terraformCLI is the CLI under test: TF_ACC_TERRAFORM_PATH (set by
// tools/with-tfcli.sh) or `terraform` on PATH.
func terraformCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("no Terraform CLI: set TF_ACC_TERRAFORM_PATH or put terraform on PATH (%v)", err)
	}
	return p
}

// isOpenTofu tells the CLIs apart by their version output, as
// tools/find-terraform.sh does.
func isOpenTofu(t *testing.T, cli string) bool {
	t.Helper()
	cmd := exec.Command(cli, "version")
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s version: %v", cli, err)
	}
	return strings.Contains(string(out), "OpenTofu")
}

// readmeSnippet returns the fenced block after the marker comment.
func readmeSnippet(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), snippetMarker)
	if !ok {
		t.Fatalf("%s has no %q marker", path, snippetMarker)
	}
	m := regexp.MustCompile("(?s)\\A[^\\n]*\\n```sh\\n(.*?)\\n```\\n").FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("%s: no ```sh block right after the marker", path)
	}
	return m[1]
}

func readVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(b))
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("%s holds %q; want a release version X.Y.Z", path, v)
	}
	return v
}

func nextPatch(t *testing.T, v string) string {
	t.Helper()
	i := strings.LastIndex(v, ".")
	n, err := strconv.Atoi(v[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return v[:i+1] + strconv.Itoa(n+1)
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// goEnv returns one `go env` value of this test's environment.
func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// newcomerEnv is the environment of someone who has Go, make and a CLI,
// and nothing configured: this test's environment without any TF_*
// variable, XDG directories or make state, with HOME (and so ~/.terraformrc,
// ~/.terraform.d and $(go env GOPATH)) in a temporary directory and the CLI
// as `terraform` first on PATH. Go keeps its build and module caches, which
// lie outside the new home, so nothing is downloaded or rebuilt from
// scratch. Every HTTP proxy points at a closed loopback port and Go's
// module proxy is off, so any attempt to reach a registry or download site
// fails; Go never proxies loopback, so the primary is still reachable.
func newcomerEnv(t *testing.T, home, cli string) []string {
	t.Helper()
	shim := t.TempDir()
	if err := os.Symlink(cli, filepath.Join(shim, "terraform")); err != nil {
		t.Fatal(err)
	}
	keepGo := map[string]string{}
	for _, name := range []string{"GOCACHE", "GOMODCACHE", "GOENV"} {
		keepGo[name] = goEnv(t, name)
	}
	drop := map[string]bool{
		"HOME": true, "PATH": true, "GOPATH": true, "GOBIN": true, "GOPROXY": true,
		"MAKEFLAGS": true, "MFLAGS": true, "MAKELEVEL": true, "MAKEOVERRIDES": true,
		"CHECKPOINT_DISABLE": true, "NO_PROXY": true, "no_proxy": true,
		"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
		"ALL_PROXY": true, "all_proxy": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] || keepGo[k] != "" || strings.HasPrefix(k, "TF_") || strings.HasPrefix(k, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range keepGo {
		env = append(env, k+"="+v)
	}
	const closed = "http://127.0.0.1:9"
	return append(env,
		"HOME="+home,
		"PATH="+shim+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOPATH="+filepath.Join(home, "go"),
		"GOBIN="+filepath.Join(home, "go", "bin"),
		"GOPROXY=off",
		"CHECKPOINT_DISABLE=1",
		"HTTP_PROXY="+closed, "HTTPS_PROXY="+closed, "http_proxy="+closed, "https_proxy="+closed,
	)
}

// run runs a command in dir and returns its output; it fails the test if
// the command fails. The command gets its own process group, which is
// killed when it ends or times out, so a background job it leaves (the
// README's `serve &` if a later step fails) does not outlive it.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Output goes to a file, not a pipe: a background job holding a pipe
	// open would keep Wait from returning.
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group may be gone already
	}
	b, rerr := os.ReadFile(f.Name())
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		var exit *exec.ExitError
		what := err.Error()
		if errors.As(err, &exit) {
			what = fmt.Sprintf("exit status %d", exit.ExitCode())
		}
		t.Fatalf("%s %s (in %s): %s\n%s", name, strings.Join(args, " "), dir, what, b)
	}
	return string(b)
}

// checkLock checks that the lock file pins the provider at version with a
// checksum.
func checkLock(t *testing.T, path, host, version string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("lock file: %v", err)
	}
	re := regexp.MustCompile(`(?s)provider "` + regexp.QuoteMeta(host) + `/zonegit/zonegit" \{\s*version\s*=\s*"` +
		regexp.QuoteMeta(version) + `".*"h1:[A-Za-z0-9+/=]+"`)
	if !re.Match(b) {
		t.Errorf("%s does not lock %s/zonegit/zonegit at %s with an h1: checksum:\n%s", path, host, version, b)
	}
}

// branchTip reads a branch of the repository at dir.
func branchTip(t *testing.T, dir, zone, branch string) string {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open replica %s: %v", dir, err)
	}
	defer r.Close()
	h, err := r.Branch(zone, branch)
	if err != nil {
		t.Fatalf("replica %s: branch %s/%s: %v", dir, zone, branch, err)
	}
	return h.String()
}
