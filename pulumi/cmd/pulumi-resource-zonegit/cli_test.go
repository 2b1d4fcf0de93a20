package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// cliDirEnv names the directory that holds the Pulumi CLI and its YAML
// language host (tools/install-pulumi.sh prints it; make testpulumi sets it).
const cliDirEnv = "ZONEGIT_PULUMI_CLI_DIR"

// binDir holds pulumi-resource-zonegit and zonegit-replicate, built once by
// TestMain when the CLI tests run.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(cliDirEnv) == "" {
		return m.Run() // the CLI tests skip themselves
	}
	dir, err := os.MkdirTemp("", "zonegit-pulumi-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The provider as `make pulumi` builds it, and the primary's real CLI.
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=0.0.1-test", "-o", dir+string(filepath.Separator),
		".", "github.com/zonegit/terraform-provider-zonegit/cmd/zonegit-replicate")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the provider and zonegit-replicate:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// TestPulumiCLI drives examples/pulumi with a real Pulumi CLI against a real
// primary: preview, up, a refresh, a new commit on the primary, a preview
// that shows the replica's refs moving from the old hash to the new one, an
// up that pulls exactly that, an empty preview, destroy.
func TestPulumiCLI(t *testing.T) {
	p := newPulumiProject(t)
	primary := &primaryProc{repo: filepath.Join(t.TempDir(), "primary")}
	tip1 := primary.importZone(t, "example.com.", zoneText(1))
	primary.serve(t)
	primary.waitTip(t, "example.com./main", tip1)

	p.run(t, "stack", "init", "test")
	p.run(t, "config", "set", "zonegit:primaryUrl", primary.url)
	p.run(t, "config", "set", "replicaPath", filepath.Join(p.work, "secondary"))

	out := p.run(t, "preview", "--diff")
	mustMatch(t, out, `\+ zonegit:index:Replica: \(create\)`)
	mustMatch(t, out, `urn:pulumi:test::zonegit-quickstart::zonegit:index:Replica::secondary`)

	p.run(t, "up", "--yes", "--skip-preview")
	o := p.outputs(t)
	wantRefs(t, "after the first up", o.ReplicaRefs, map[string]string{"example.com./main": tip1})
	wantRefs(t, "primaryTips after the first up", o.PrimaryTips, map[string]string{"example.com./main": tip1})
	if o.LastPull.Objects <= 0 || o.LastPull.Primary != primary.url {
		t.Errorf("lastPull after the first up = %+v, want objects > 0 from %s", o.LastPull, primary.url)
	}
	p.run(t, "preview", "--expect-no-changes")

	// A refresh records the primary's refs of this moment in the
	// resource's private state; a plan that used them (as Terraform's
	// does) would miss the commit below.
	p.run(t, "refresh", "--yes", "--skip-preview")
	tip2 := primary.importZone(t, "example.com.", zoneText(2))
	if tip2 == tip1 {
		t.Fatalf("the second import made no new commit (%s)", tip1)
	}
	primary.waitTip(t, "example.com./main", tip2)

	out = p.run(t, "preview", "--diff")
	mustMatch(t, out, `~ zonegit:index:Replica: \(update\)`)
	// The replica's planned refs property (the program exports it as
	// replicaRefs) goes from the old hash to the new one. Pulumi prints a
	// resource's own diff from its inputs only, so this is where it shows.
	mustMatch(t, out, `(?s)~ replicaRefs\s*:\s*\{\s*~ example\.com\./main\s*:\s*"`+tip1+`"\s*=>\s*"`+tip2+`"`)

	p.run(t, "up", "--yes", "--skip-preview")
	o = p.outputs(t)
	wantRefs(t, "after the second up", o.ReplicaRefs, map[string]string{"example.com./main": tip2})
	wantRefs(t, "primaryTips after the second up", o.PrimaryTips, map[string]string{"example.com./main": tip2})

	out = p.run(t, "preview", "--expect-no-changes", "--diff")
	mustNotMatch(t, out, `~ zonegit:index:Replica`)

	p.run(t, "destroy", "--yes", "--skip-preview")
	if state := p.run(t, "stack", "export"); strings.Contains(state, "zonegit:index:Replica") {
		t.Errorf("the replica is still in the stack's state after destroy:\n%s", state)
	}
}

// TestPulumiCLIUnreachablePrimary: a primary that does not answer fails the
// preview with an error that names it.
func TestPulumiCLIUnreachablePrimary(t *testing.T) {
	p := newPulumiProject(t)
	// A port that was just free and has no listener now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()

	p.run(t, "stack", "init", "unreachable")
	p.run(t, "config", "set", "zonegit:primaryUrl", url)
	p.run(t, "config", "set", "replicaPath", filepath.Join(p.work, "secondary"))
	// No retries: the error is what this test is about, not the backoff.
	p.run(t, "config", "set", "--path", "zonegit:retry.attempts", "0")

	out, err := p.try("preview", "--diff")
	t.Logf("pulumi preview --diff:\n%s", out)
	if err == nil {
		t.Fatalf("preview against an unreachable primary succeeded:\n%s", out)
	}
	// The replica's plan fails naming the primary and the cause (and so
	// does the program's getRefs).
	mustMatch(t, out, `Preview failed:.*\n.*Cannot read the primary's refs - GET `+regexp.QuoteMeta(url)+`/v0/refs failed: .*connection refused`)
	mustMatch(t, out, `invocation of zonegit:index:getRefs returned an error: Cannot read the primary's refs: GET `+regexp.QuoteMeta(url))
	if _, err := os.Stat(filepath.Join(p.work, "secondary")); !os.IsNotExist(err) {
		t.Errorf("the failed preview created the replica directory (stat: %v)", err)
	}
}

// pulumiProject is a copy of examples/pulumi and a Pulumi CLI set up for it:
// its own PULUMI_HOME, a file backend and a passphrase, no network.
type pulumiProject struct {
	work string // holds examples/pulumi, bin, state, home
	dir  string // the project directory
	env  []string
	cli  string
}

func newPulumiProject(t *testing.T) *pulumiProject {
	t.Helper()
	cliDir := os.Getenv(cliDirEnv)
	if cliDir == "" {
		t.Skipf("%s is not set: run make testpulumi (it builds the Pulumi CLI with tools/install-pulumi.sh)", cliDirEnv)
	}
	work := t.TempDir()
	p := &pulumiProject{work: work, dir: filepath.Join(work, "examples", "pulumi"), cli: filepath.Join(cliDir, "pulumi")}
	// The same layout as the repository, so the example's plugin path
	// (../../bin) finds the provider built by TestMain.
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "pulumi", "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "Pulumi.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binDir, filepath.Join(work, "bin")); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULUMI_") && !strings.HasPrefix(kv, "ZONEGIT_") && !strings.HasPrefix(kv, "PATH=") {
			p.env = append(p.env, kv)
		}
	}
	p.env = append(p.env,
		"PATH="+cliDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PULUMI_HOME="+filepath.Join(work, "home"),
		"PULUMI_CONFIG_PASSPHRASE=test",
		"PULUMI_SKIP_UPDATE_CHECK=1",
		// Everything is local: fail rather than try to download a plugin.
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
	)
	state := filepath.Join(work, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	p.run(t, "login", "file://"+state)
	return p
}

// try runs pulumi in the project directory and returns its combined output.
func (p *pulumiProject) try(args ...string) (string, error) {
	args = append(args, "--non-interactive", "--color", "never")
	cmd := exec.Command(p.cli, args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run is try for a command that must succeed.
func (p *pulumiProject) run(t *testing.T, args ...string) string {
	t.Helper()
	start := time.Now()
	out, err := p.try(args...)
	t.Logf("pulumi %s (%s):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("pulumi %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// stackOutputs are the example program's outputs.
type stackOutputs struct {
	ReplicaRefs map[string]string `json:"replicaRefs"`
	PrimaryTips map[string]string `json:"primaryTips"`
	LastPull    struct {
		Objects    int64  `json:"objects"`
		Bytes      int64  `json:"bytes"`
		DurationMs int64  `json:"durationMs"`
		Primary    string `json:"primary"`
	} `json:"lastPull"`
}

func (p *pulumiProject) outputs(t *testing.T) stackOutputs {
	t.Helper()
	out, err := p.try("stack", "output", "--json")
	if err != nil {
		t.Fatalf("pulumi stack output: %v\n%s", err, out)
	}
	var o stackOutputs
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("pulumi stack output: %v\n%s", err, out)
	}
	return o
}

// primaryProc is `zonegit-replicate serve` on a loopback port.
type primaryProc struct {
	repo string
	url  string
}

// serve starts serving the repository, which an import must have created.
func (p *primaryProc) serve(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "zonegit-replicate"), "serve",
		"--repo", p.repo, "--listen", "127.0.0.1:0", "--poll", "100ms")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	addr := regexp.MustCompile(`serving .* on (http://\S+)`)
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if m := addr.FindStringSubmatch(lines.Text()); m != nil {
			p.url = m[1]
			break
		}
		t.Log("serve: " + lines.Text())
	}
	if p.url == "" {
		t.Fatalf("zonegit-replicate serve printed no address (%v)", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
}

// importZone commits text as zone's main branch and returns the commit.
func (p *primaryProc) importZone(t *testing.T, zone, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(binDir, "zonegit-replicate"), "import", "--repo", p.repo, "--zone", zone, "--file", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zonegit-replicate import %s: %v\n%s", zone, err, stderr.String())
	}
	m := regexp.MustCompile(`(?m)^commit ([0-9a-f]{64})$`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("zonegit-replicate import printed no commit: %q", stdout.String())
	}
	return m[1]
}

// waitTip waits until the primary serves hash as ref ("zone/branch"): serve
// notices new commits at its next poll.
func (p *primaryProc) waitTip(t *testing.T, ref, hash string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/v0/refs")
		if err == nil {
			var refs replicate.RefsResponse
			err = json.NewDecoder(resp.Body).Decode(&refs)
			resp.Body.Close()
			if err == nil {
				for _, b := range refs.Branches {
					if b.Zone+"/"+b.Name == ref {
						last = b.Hash
					}
				}
				if last == hash {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the primary serves %s = %q, want %s", ref, last, hash)
}

// zoneText is example.com. at SOA serial n; www's address changes with n.
func zoneText(n int) string {
	return fmt.Sprintf("$ORIGIN example.com.\n"+
		"@ 3600 IN SOA ns1 hostmaster %d 7200 900 1209600 300\n"+
		"@ 3600 IN NS ns1\n"+
		"ns1 3600 IN A 192.0.2.1\n"+
		"www 300 IN A 192.0.2.%d\n", n, 10+n)
}

func wantRefs(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: refs = %v, want %v", what, got, want)
	}
}

func mustMatch(t *testing.T, out, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(out) {
		t.Errorf("output does not match %q:\n%s", re, out)
	}
}

func mustNotMatch(t *testing.T, out, re string) {
	t.Helper()
	if regexp.MustCompile(re).MatchString(out) {
		t.Errorf("output matches %q:\n%s", re, out)
	}
}
