package main

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// TestSecondaryStateDiskFull: the state file on a full filesystem (a real
// tmpfs): the apply answers 500 naming the state file and "no space", and
// pulls nothing; with space again, the same apply works and the state
// file is complete.
func TestSecondaryStateDiskFull(t *testing.T) {
	small := mountTmpfs(t, "64k")
	bin := realCLI(t)
	primaryDir := filepath.Join(t.TempDir(), "primary")
	if _, err := importBin(t, bin, primaryDir, zoneText(1, 20)); err != nil {
		t.Fatal(err)
	}
	primary := startServeProc(t, bin, "--repo", primaryDir)
	token := writeTestFile(t, t.TempDir(), "control", []byte("control-secret\n"))
	state := filepath.Join(small, "ns1.json")
	d := startSecondaryProc(t, bin, "--repo", filepath.Join(t.TempDir(), "replica"), "--primary", primary.url,
		"--control-token-file", token, "--state", state)
	filler := fill(t, small, 0)
	ctx := context.Background()
	desired := secondary.Desired{Zones: []string{"example.com."}}
	_, err := d.ctl.Apply(ctx, secondary.ApplyRequest{Desired: desired})
	var ce *secondary.ControlError
	if !errors.As(err, &ce) || ce.Status != 500 || !strings.Contains(ce.Message, state) || !strings.Contains(ce.Message, "no space") {
		t.Fatalf("apply with the state on a full disk: %v", err)
	}
	st, err := d.ctl.Status(ctx)
	if err != nil || len(st.Refs) != 0 || st.Desired != nil || st.LastPull != nil {
		t.Fatalf("after the refused apply: %v %+v", err, st)
	}
	if entries, _ := os.ReadDir(small); len(entries) != 1 {
		t.Errorf("the full filesystem holds %d entries, want the filler only", len(entries))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	res, err := d.ctl.Apply(ctx, secondary.ApplyRequest{Desired: desired})
	if err != nil || len(res.Status.Refs) != 1 {
		t.Fatalf("apply with space again: %v %+v", err, res)
	}
	var file struct {
		Version int                `json:"version"`
		Desired *secondary.Desired `json:"desired"`
	}
	if err := json.Unmarshal(readTestFile(t, state), &file); err != nil || file.Desired == nil || len(file.Desired.Zones) != 1 {
		t.Errorf("state file: %v %+v", err, file)
	}
	if err := d.signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v: %s", err, d.stderr.String())
	}
	noCrash(t, "secondary", d.stderr.String())
}

// TestSecondaryKilledDuringStateWrite: the real binary, SIGKILLed at
// random moments while applies rewrite its state file back and forth:
// every restart finds a whole state file (one of the desired states
// written, never a mix or a fragment), and no temporary file stays.
func TestSecondaryKilledDuringStateWrite(t *testing.T) {
	bin := realCLI(t)
	primaryDir := filepath.Join(t.TempDir(), "primary")
	if _, err := importBin(t, bin, primaryDir, zoneText(1, 20)); err != nil {
		t.Fatal(err)
	}
	primary := startServeProc(t, bin, "--repo", primaryDir)
	token := writeTestFile(t, t.TempDir(), "control", []byte("control-secret\n"))
	replica := filepath.Join(t.TempDir(), "replica")
	state := secondary.DefaultStatePath(replica)
	args := []string{"--repo", replica, "--primary", primary.url, "--control-token-file", token}
	desireds := []secondary.Desired{
		{Zones: []string{"example.com."}, Branches: []string{"main"}},
		{Prune: true, Pins: nil},
	}
	ctx := context.Background()
	var kills, written int
	for round := range 8 {
		d := startSecondaryProc(t, bin, args...)
		if round > 0 && written > 0 {
			// The daemon says so just after its serving line, which
			// startSecondaryProc waits for.
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(d.stderr.String(), "desired state restored") && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := d.stderr.String(); !strings.Contains(got, "desired state restored") {
				t.Fatalf("round %d: the restarted daemon did not restore a desired state: %s", round, got)
			}
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := d.ctl.Apply(ctx, secondary.ApplyRequest{Desired: desireds[i%2]}); err == nil {
					written++
				}
			}
		}()
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
		if err := d.signal(t, syscall.SIGKILL); err != nil {
			kills++
		}
		close(stop)
		<-done
		noCrash(t, "secondary", d.stderr.String())
		var file struct {
			Version int                `json:"version"`
			Replica string             `json:"replica"`
			Desired *secondary.Desired `json:"desired"`
			Updated string             `json:"updated"`
		}
		b, err := os.ReadFile(state)
		if errors.Is(err, os.ErrNotExist) && written == 0 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &file); err != nil || file.Desired == nil {
			t.Fatalf("round %d: the state file after SIGKILL: %v: %q", round, err, b)
		}
		if file.Desired.Prune != (len(file.Desired.Zones) == 0) {
			t.Fatalf("round %d: the state file mixes two desired states: %+v", round, file.Desired)
		}
	}
	t.Logf("%d kills, %d applies answered", kills, written)
	if written == 0 {
		t.Fatal("no apply finished: the test never wrote the state file")
	}
	d := startSecondaryProc(t, bin, args...)
	if entries, err := os.ReadDir(filepath.Dir(state)); err == nil {
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("a temporary state file stayed after a restart: %s", e.Name())
			}
		}
	}
	if err := d.signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v: %s", err, d.stderr.String())
	}
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
