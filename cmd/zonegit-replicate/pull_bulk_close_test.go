package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// TestPullKilledInBulkClose: the first pull's Close merges level 0 (when
// the load left more than four level-0 tables, as 200k records do: a
// second handle whose Close merges) after Badger has flushed its last
// memtable and deleted the write-ahead log;
// the merge writes new tables before the MANIFEST lists them. SIGKILLed
// there (no .mem left, and more tables than the MANIFEST lists), the
// replica must still be one the tools accept: fsck passes, the branch is
// the whole target (its ref was written before Close), a default-options
// read-only Badger open reads it, and the next pull succeeds. Up to five
// tries to land the kill in that window; it is skipped if none does.
func TestPullKilledInBulkClose(t *testing.T) {
	if testing.Short() {
		t.Skip("imports and pulls 200k records")
	}
	bin := realCLI(t)
	primary := filepath.Join(t.TempDir(), "primary")
	tip, err := importBin(t, bin, primary, zoneText(1, 200_000))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeProc(t, bin, "--repo", primary)
	for try := 0; try < 5; try++ {
		replica := filepath.Join(t.TempDir(), "replica")
		if !killInBulkClose(t, bin, srv.url, replica) {
			continue
		}
		if _, err := os.Stat(filepath.Join(replica, "ZONEGIT-BULK-CLOSE")); err != nil {
			t.Errorf("killed in Close, the replica has no merge marker: %v", err)
		}
		if code, out, errOut := runBin(t, bin, "fsck", "--repo", replica); code != exitOK || !strings.HasPrefix(out, "ok:") {
			t.Errorf("fsck after a kill in Close: exit %d: %s%s", code, out, errOut)
		}
		if got := localTip(t, replica); got != tip {
			t.Errorf("main = %s after a kill in Close, want %s (the ref was written before Close)", got, tip)
		}
		db, err := badger.Open(badger.DefaultOptions(replica).WithReadOnly(true).WithLogger(nil))
		if err != nil {
			t.Errorf("default-options read-only open after a kill in Close: %v", err)
		} else if err := db.Close(); err != nil {
			t.Error(err)
		}
		code, _, errOut := runBin(t, bin, "pull", "--primary", srv.url, "--repo", replica)
		noCrash(t, "pull after a kill in Close", errOut)
		if code != exitOK {
			t.Errorf("pull after a kill in Close: exit %d: %s", code, errOut)
		}
		if code, out, errOut := runBin(t, bin, "fsck", "--repo", replica); code != exitOK || !strings.HasPrefix(out, "ok:") {
			t.Errorf("fsck after the next pull: exit %d: %s%s", code, out, errOut)
		}
		return
	}
	t.Skip("no kill landed inside Close's merge in five tries")
}

// killInBulkClose runs a first pull into replica and SIGKILLs it once
// its write-ahead logs are gone (Close flushed the last memtable) and a
// table the MANIFEST does not list yet exists (the merge is writing). It
// reports whether the kill landed there.
func killInBulkClose(t *testing.T, bin, url, replica string) bool {
	t.Helper()
	cmd := exec.Command(bin, "pull", "--primary", url, "--repo", replica)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	sawMem, maxSST := false, 0
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("pull: %v: %s", err, stderr.String())
			}
			return false // finished before the poll saw the window
		default:
		}
		mems, _ := filepath.Glob(filepath.Join(replica, "*.mem"))
		ssts, _ := filepath.Glob(filepath.Join(replica, "*.sst"))
		switch {
		case len(mems) > 0:
			sawMem, maxSST = true, len(ssts)
		case sawMem && len(ssts) > maxSST:
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := <-done
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), "killed") {
				return false
			}
			// A pull killed before Close leaves its log (the poll may
			// glimpse none while a memtable is replaced): that is not it.
			mems, _ = filepath.Glob(filepath.Join(replica, "*.mem"))
			return len(mems) == 0
		}
		time.Sleep(time.Millisecond)
	}
	_ = cmd.Process.Kill()
	t.Fatal("the pull did not end within two minutes")
	return false
}
