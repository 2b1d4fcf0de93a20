package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKilledReaderHelper is the reader TestKilledReadersSnapshotSwept
// kills: it opens the repository read-only, prints its snapshot
// directory, and waits for SIGKILL.
func TestKilledReaderHelper(t *testing.T) {
	dir := os.Getenv("ZONEGIT_TEST_CRASH_WRITER")
	if dir == "" {
		t.Skip("helper process only")
	}
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("snapshot " + r.snap.dir + "\n")
	time.Sleep(time.Minute)
	os.Exit(1)
}

// TestKilledReadersSnapshotSwept: the private snapshot directory of a
// reader that was SIGKILLed is removed by the next read-only open in the
// same place once it is old enough; a live reader's directory, a new one
// and one named as older versions named theirs (which held no lock) stay.
func TestKilledReadersSnapshotSwept(t *testing.T) {
	if !sharedLocksSeparate {
		t.Skip("snapshot directories are swept only where flock(2) has a shared mode")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir, res := closedRepo(t)

	// A reader killed while it had the repository open.
	killed, ok := strings.CutPrefix(killAfterLine(t, dir, "TestKilledReaderHelper", 0), "snapshot ")
	if !ok || filepath.Dir(killed) != tmp {
		t.Fatalf("reader said %q; want its snapshot directory in %s", killed, tmp)
	}

	// A live reader, opened before the kill's directory is old enough.
	live, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	old := filepath.Join(tmp, "zonegit-snapshot-123456")
	fresh := filepath.Join(tmp, "zonegit"+snapshotDirMark+"fresh")
	for _, d := range []string{old, fresh} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * snapshotSweepAge)
	for _, d := range []string{killed, live.snap.dir, old} {
		if err := os.Chtimes(d, past, past); err != nil {
			t.Fatal(err)
		}
	}
	// The first snapshot in this directory swept it before the kill's
	// directory was old: let the next open sweep again.
	snapshotSweeps.Lock()
	delete(snapshotSweeps.last, tmp)
	snapshotSweeps.Unlock()

	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("the killed reader's snapshot %s is still there (%v)", killed, err)
	}
	for _, d := range []string{live.snap.dir, old, fresh} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was swept: %v", d, err)
		}
	}
	for name, h := range map[string]*Repo{"the live reader": live, "the new reader": r} {
		tip, err := h.Branch("example.com.", "main")
		if err != nil || tip != res.Commit {
			t.Errorf("%s: main = %s, %v; want %s", name, tip.Short(), err, res.Commit.Short())
		}
	}
	own := r.snap.dir
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("a closed reader's snapshot %s is still there (%v)", own, err)
	}
}
