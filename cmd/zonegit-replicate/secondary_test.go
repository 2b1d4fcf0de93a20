package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

	// 2. Restarted, a pull ended by SIGTERM: exit 0, sound.
	d = startSecondaryProc(t, bin, args...)
	go func() {
		_, err := d.ctl.Apply(ctx, secondary.ApplyRequest{Desired: secondary.Desired{Zones: []string{"example.com."}}})
		applyErr <- err
	}()
	d.waitBusy(t)
	if err := d.signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v: %s", err, d.stderr.String())
	}
	// The apply either finished within --grace or was cut off with the
	// connection: both are fine, the replica is what matters.
	t.Logf("the apply during SIGTERM: %v", <-applyErr)
	if !strings.Contains(d.stderr.String(), "shutting down") {
		t.Errorf("no shutdown line: %s", d.stderr.String())
	}
	got = checkReplica(t, bin, replica, tip)
	t.Logf("after SIGTERM: replica main %q", got)

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
