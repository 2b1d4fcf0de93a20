package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// secondaryProc is a running `secondary` process.
type secondaryProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
	once   sync.Once
	err    error
	ctl    *secondary.ControlClient
}

func startSecondaryProc(t *testing.T, bin string, args ...string) *secondaryProc {
	t.Helper()
	p := &secondaryProc{stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"secondary", "--listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.signal(t, syscall.SIGKILL) }) // tests that care signal it themselves
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url = m[1]
			break
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("secondary exited (%v): %s", err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("secondary printed no address: %s", p.stderr.String())
		}
	}
	var err error
	if p.ctl, err = secondary.NewControlClient(p.url, secondary.ControlOptions{Token: "control-secret", RetryAttempts: -1}); err != nil {
		t.Fatal(err)
	}
	return p
}

// signal sends sig and waits for the process to exit; it returns Wait's
// error (nil: exit 0).
func (p *secondaryProc) signal(t *testing.T, sig syscall.Signal) error {
	p.once.Do(func() {
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("signal %v: %v", sig, err)
		}
		select {
		case p.err = <-p.done:
		case <-time.After(60 * time.Second):
			_ = p.cmd.Process.Kill()
			p.err = <-p.done
			t.Errorf("secondary did not exit within 60s of %v: %s", sig, p.stderr.String())
		}
	})
	return p.err
}

// waitBusy waits until the daemon is pulling.
func (p *secondaryProc) waitBusy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		st, err := p.ctl.Status(context.Background())
		if err == nil && st.Busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the secondary never started pulling: %s", p.stderr.String())
}

// checkReplica runs fsck on dir and returns its main tip ("" if absent),
// which must be absent or the expected tip: refs name complete closures.
func checkReplica(t *testing.T, bin, dir, tip string) string {
	t.Helper()
	code, out, errOut := runBin(t, bin, "fsck", "--repo", dir)
	noCrash(t, "fsck", errOut)
	if code != exitOK || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("fsck of the replica: exit %d: %s%s", code, out, errOut)
	}
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := r.Branch("example.com.", "main")
	if errors.Is(err, repo.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != tip {
		t.Fatalf("replica main = %s, want absent or %s", h, tip)
	}
	return h.String()
}

// TestSecondaryKilledMidPull: the real binary, SIGKILLed while it pulls a
// 100,000-record zone, leaves a sound replica whose refs name only complete
// closures; restarted, its next pull can be ended with SIGTERM (exit 0,
// replica sound), and the apply after that converges to the plan.
func TestSecondaryKilledMidPull(t *testing.T) {
	if testing.Short() {
		t.Skip("imports and pulls a 100,000-record zone several times")
	}
	bin := realCLI(t)
	primaryDir := filepath.Join(t.TempDir(), "primary")
	tip, err := importBin(t, bin, primaryDir, zoneText(1, 100_000))
	if err != nil {
		t.Fatal(err)
	}
	primary := startServeProc(t, bin, "--repo", primaryDir)
	tokenFile := filepath.Join(t.TempDir(), "control")
	if err := os.WriteFile(tokenFile, []byte("control-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replica := filepath.Join(t.TempDir(), "replica")
	args := []string{"--repo", replica, "--primary", primary.url, "--control-token-file", tokenFile}
	ctx := context.Background()

	// 1. SIGKILL mid-pull.
	d := startSecondaryProc(t, bin, args...)
	applyErr := make(chan error, 1)
	go func() {
		_, err := d.ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}}})
		applyErr <- err
	}()
	d.waitBusy(t)
	time.Sleep(200 * time.Millisecond)
	if err := d.signal(t, syscall.SIGKILL); err == nil {
		t.Fatal("the killed secondary exited 0")
	}
	if err := <-applyErr; err == nil {
		t.Fatal("the apply finished before the kill: the test did not kill a pull in flight")
	}
	got := checkReplica(t, bin, replica, tip)
	t.Logf("after SIGKILL: replica main %q", got)
	if _, err := os.Stat(secondary.DefaultStatePath(replica)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an apply that never finished stored a desired state: %v", err)
	}

	// 2. Restarted, a pull cut off by SIGTERM after a short --grace: the
	// daemon says so, and exits without a crash.
	d = startSecondaryProc(t, bin, append(args, "--grace", "200ms")...)
	go func() {
		_, err := d.ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}}})
		applyErr <- err
	}()
	d.waitBusy(t)
	err = d.signal(t, syscall.SIGTERM)
	noCrash(t, "secondary", d.stderr.String())
	t.Logf("exit after SIGTERM: %v; the apply: %v", err, <-applyErr)
	if !strings.Contains(d.stderr.String(), "shutting down") {
		t.Errorf("no shutdown line: %s", d.stderr.String())
	}
	if err != nil && !strings.Contains(d.stderr.String(), "cut off") {
		t.Errorf("exit %v without saying why: %s", err, d.stderr.String())
	}
	got = checkReplica(t, bin, replica, tip)
	t.Logf("after SIGTERM: replica main %q", got)
	for _, l := range strings.Split(d.stderr.String(), "\n") {
		if strings.HasPrefix(l, "pull ") {
			t.Logf("log: %.300s", l)
		}
	}

	// 3. The next apply converges to the plan.
	d = startSecondaryProc(t, bin, args...)
	plan, err := d.ctl.Plan(ctx, secondary.Desired{Zones: []string{"example.com."}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Refs["example.com./main"] != tip {
		t.Fatalf("plan: %v, want main at %s", plan.Refs, tip)
	}
	res, err := d.ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}}, Expect: plan.Refs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status.Refs["example.com./main"] != tip || res.Pull.Error != "" {
		t.Fatalf("apply after the faults: %v %+v", res.Status.Refs, res.Pull)
	}
	t.Logf("converging pull: %d objects, %d bytes, %d ms", res.Pull.Objects, res.Pull.Bytes, res.Pull.DurationMS)
	if !strings.Contains(d.stderr.String(), "pull trigger=apply") {
		t.Errorf("no pull log line: %s", d.stderr.String())
	}
	if err := d.signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v: %s", err, d.stderr.String())
	}
	if checkReplica(t, bin, replica, tip) != tip {
		t.Error("the converged replica lost main")
	}
}

// startSecondary runs `secondary` in-process and returns its base URL and
// stderr; the daemon is stopped (as by SIGTERM) at the end of the test,
// which must see exit 0.
func startSecondary(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, append([]string{"secondary", "--listen", "127.0.0.1:0"}, args...), io.Discard, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("secondary exited with %d: %s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("secondary did not stop after its context was cancelled")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stderr
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("secondary exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("secondary printed no address: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSecondaryTLS: the daemon reaches an mTLS primary with the
// --primary-* flags (a token too), and serves its control API over mTLS
// with serve's --tls-* flags: a control client with a certificate from the
// bundle applies, one without is refused in the handshake; the read token
// protects /v0 and is not the control token.
func TestSecondaryTLS(t *testing.T) {
	m := startMTLSServe(t)
	fdir := t.TempDir()
	serverCert, serverKey := m.pki.ServerCert(t)
	controlFile := writeTestFile(t, fdir, "control", []byte("control-secret\n"))
	readFile := writeTestFile(t, fdir, "read", []byte("read-secret\n"))
	url, stderr := startSecondary(t, "--repo", filepath.Join(t.TempDir(), "replica"), "--primary", m.url,
		"--control-token-file", controlFile, "--token-file", readFile,
		"--primary-ca-cert", m.caFile, "--primary-client-cert", m.clientCertFile, "--primary-client-key", m.keyFile,
		"--tls-cert", writeTestFile(t, fdir, "server.pem", serverCert), "--tls-key", writeTestFile(t, fdir, "server-key.pem", serverKey),
		"--tls-client-ca", m.caFile)
	if !strings.HasPrefix(url, "https://") || !strings.Contains(stderr.String(), "client certificates required") {
		t.Fatalf("address %q, log %s", url, stderr.String())
	}
	ctx := context.Background()
	ctl, err := secondary.NewControlClient(url, secondary.ControlOptions{Token: "control-secret", RetryAttempts: -1,
		CACertPEM: string(m.pki.CAPEM), ClientCertPEM: string(m.clientCert), ClientKeyPEM: string(m.clientKey)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status.Refs["example.com./main"] != m.tip.String() {
		t.Errorf("refs over mTLS: %v, want main %s", res.Status.Refs, m.tip)
	}
	anon, err := secondary.NewControlClient(url, secondary.ControlOptions{Token: "control-secret", RetryAttempts: -1,
		CACertPEM: string(m.pki.CAPEM), RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var ce *secondary.ControlError
	if _, err := anon.Status(ctx); err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), url) {
		t.Errorf("control client without a certificate: %v, want a TLS error naming the daemon", err)
	}
	// The replica is readable over the protocol with the read token only.
	reader := func(token string) error {
		local, err := repo.Open(t.TempDir(), repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer local.Close()
		c, err := replicate.NewClientWithOptions(local, replicate.ClientOptions{PrimaryURL: url, Token: token, RetryAttempts: -1,
			CACertPEM: string(m.pki.CAPEM), ClientCertPEM: string(m.clientCert), ClientKeyPEM: string(m.clientKey)})
		if err != nil {
			t.Fatal(err)
		}
		return c.Pull(ctx)
	}
	if err := reader("read-secret"); err != nil {
		t.Errorf("pull from the secondary with the read token: %v", err)
	}
	var se *replicate.StatusError
	if err := reader("control-secret"); !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Errorf("pull from the secondary with the control token: %v, want 401", err)
	}
}

// TestSecondaryUsage: bad command lines are usage errors naming the flag.
func TestSecondaryUsage(t *testing.T) {
	dir := t.TempDir()
	control := writeTestFile(t, dir, "control", []byte("same\n"))
	empty := writeTestFile(t, dir, "empty", []byte("\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--primary", "http://127.0.0.1:1", "--control-token-file", control}, "--repo is required"},
		{[]string{"--repo", dir + "/r", "--control-token-file", control}, "--primary is required"},
		{[]string{"--repo", dir + "/r", "--primary", "http://127.0.0.1:1"}, "--control-token-file is required"},
		{[]string{"--repo", dir + "/r", "--primary", "ftp://x", "--control-token-file", control}, "--primary"},
		{[]string{"--repo", dir + "/r", "--primary", "http://127.0.0.1:1", "--control-token-file", empty}, "--control-token-file"},
		{[]string{"--repo", dir + "/r", "--primary", "http://127.0.0.1:1", "--control-token-file", control, "--token-file", control}, "same token"},
		{[]string{"--repo", dir + "/r", "--primary", "http://127.0.0.1:1", "--control-token-file", control, "--primary-client-cert", control}, "--primary-client-cert needs --primary-client-key"},
		{[]string{"--repo", dir + "/r", "--primary", "http://127.0.0.1:1", "--control-token-file", control, "--tls-client-ca", control}, "--tls-client-ca needs --tls-cert"},
		{[]string{"--repo", dir + "/r", "--primary", "http://127.0.0.1:1", "--control-token-file", control, "--follow", "-1s"}, "--follow"},
		{[]string{"--repo", dir + "/r", "--primary", "http://127.0.0.1:1", "--control-token-file", control, "--primary-ca-cert", empty}, "--primary-ca-cert"},
	} {
		var stderr syncBuffer
		code := dispatch(context.Background(), append([]string{"secondary"}, tc.args...), io.Discard, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d: %s; want 2 naming %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	if _, err := os.Stat(dir + "/r"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command line created the replica: %v", err)
	}
}
