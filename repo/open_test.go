package repo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/internal/dirstate"
)

const openTestZone = "$ORIGIN example.com.\n@ IN SOA ns1 host 1 2 3 4 5\nwww IN A 192.0.2.1\nmail IN MX 10 www\n"

// closedRepo imports a small zone into a new directory and closes it, as a
// writer that finished leaves it.
func closedRepo(t *testing.T) (dir string, res *ImportResult) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "repo")
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = importString(t, w, "example.com.", "", openTestZone)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, res
}

func tableFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no tables in %s (%v)", dir, err)
	}
	return m
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestReadOnlyOpenChangesNothing(t *testing.T) {
	dir, res := closedRepo(t)
	before := dirstate.Listing(t, dir)
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if tip, err := r.Branch("example.com.", "main"); err != nil || tip != res.Commit {
		t.Errorf("main = %s, %v; want %s", tip.Short(), err, res.Commit.Short())
	}
	rep, err := r.Fsck(context.Background())
	if err != nil || !rep.OK() {
		t.Errorf("fsck %+v, %v", rep, err)
	}
	if _, err := r.NewBatch(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("NewBatch on a read-only handle: %v", err)
	}
	snapDir := r.snap.dir
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snapDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private snapshot %s left behind (%v)", snapDir, err)
	}
	dirstate.Unchanged(t, "the read-only open", dir, before)
}

func TestReadOnlyOpenOfNoRepository(t *testing.T) {
	empty := t.TempDir()
	if _, err := Open(empty, Options{ReadOnly: true}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), empty) {
		t.Errorf("read-only open of an empty directory: %v; want ErrNotFound naming it", err)
	}
	if _, err := Open(filepath.Join(empty, "absent"), Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of a missing directory: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("read-only open wrote into an empty directory: %v", entries)
	}
}

// TestDamagedRepositoryIsAnError: every kind of damage is an error that
// names the damaged part and what to do, for readers and writers alike; no
// panic, and the directory is left byte for byte as it was.
func TestDamagedRepositoryIsAnError(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		what   string // the part the error must name
	}{
		{"table cut in half", func(t *testing.T, dir string) {
			p := tableFiles(t, dir)[0]
			truncateFile(t, p, fileSize(t, p)/2)
		}, "table 000001.sst"},
		{"table cut by 3 bytes", func(t *testing.T, dir string) {
			p := tableFiles(t, dir)[0]
			truncateFile(t, p, fileSize(t, p)-3)
		}, "table 000001.sst"},
		{"table emptied", func(t *testing.T, dir string) {
			truncateFile(t, tableFiles(t, dir)[0], 0)
		}, "table 000001.sst"},
		{"table footer flipped", func(t *testing.T, dir string) {
			p := tableFiles(t, dir)[0]
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-12] ^= 0xff // inside the checksum or the index
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "table 000001.sst"},
		{"table deleted", func(t *testing.T, dir string) {
			if err := os.Remove(tableFiles(t, dir)[0]); err != nil {
				t.Fatal(err)
			}
		}, "table 000001.sst"},
		{"MANIFEST cut short", func(t *testing.T, dir string) {
			p := filepath.Join(dir, manifestName)
			truncateFile(t, p, fileSize(t, p)-3)
		}, "MANIFEST"},
		{"MANIFEST cut to its header", func(t *testing.T, dir string) {
			// A well-formed MANIFEST that lists nothing: Badger would
			// delete every table.
			truncateFile(t, filepath.Join(dir, manifestName), 8)
		}, "table 000001.sst"},
		{"MANIFEST emptied", func(t *testing.T, dir string) {
			truncateFile(t, filepath.Join(dir, manifestName), 0)
		}, "MANIFEST"},
		{"MANIFEST deleted", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, manifestName)); err != nil {
				t.Fatal(err)
			}
		}, "MANIFEST"},
		{"value log shorter than its header", func(t *testing.T, dir string) {
			m, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
			if len(m) == 0 {
				t.Fatal("no value log")
			}
			truncateFile(t, m[0], 7)
		}, ".vlog"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := closedRepo(t)
			c.damage(t, dir)
			before := dirstate.Listing(t, dir)
			for _, opts := range []Options{{ReadOnly: true}, {ReadOnly: true, Detached: true}, {}} {
				r, err := Open(dir, opts)
				if err == nil {
					r.Close()
					t.Fatalf("open %+v of a damaged repository succeeded", opts)
				}
				msg := err.Error()
				if !errors.Is(err, ErrDamaged) || !strings.Contains(msg, c.what) || !strings.Contains(msg, dir) ||
					!strings.Contains(msg, "zonegit-replicate fsck --repo "+dir) || !strings.Contains(msg, "delete the directory") {
					t.Errorf("open %+v: %v\nwant ErrDamaged naming %q, the directory and what to do", opts, err, c.what)
				}
				dirstate.Unchanged(t, "the read-only open", dir, before)
			}
		})
	}
}

// TestCorruptBlockIsReported: damage inside a table (its footer intact)
// passes the open; reading it is an error or an fsck problem, not a panic.
func TestCorruptBlockIsReported(t *testing.T) {
	dir, _ := closedRepo(t)
	p := tableFiles(t, dir)[0]
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 64 && i < len(b)/4; i++ {
		b[i+len(b)/8] ^= 0x5a
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirstate.Listing(t, dir)
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("open: %v; want ErrDamaged or success", err)
		}
		dirstate.Unchanged(t, "the read-only open", dir, before)
		return
	}
	rep, err := r.Fsck(context.Background())
	r.Close()
	if err == nil && rep.OK() {
		t.Error("fsck found a corrupt block sound")
	}
	if err != nil && !errors.Is(err, ErrDamaged) {
		t.Errorf("fsck: %v; want a report or ErrDamaged", err)
	}
	dirstate.Unchanged(t, "the read-only open", dir, before)
}

// TestCrashedWriterHelper is the writer TestCrashedWriterIsReadable kills:
// it commits a zone, reports, and waits for SIGKILL.
func TestCrashedWriterHelper(t *testing.T) {
	dir := os.Getenv("ZONEGIT_TEST_CRASH_WRITER")
	if dir == "" {
		t.Skip("helper process only")
	}
	w, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	commitAndWait(t, w)
}

// crashWriter runs TestCrashedWriterHelper on dir in a new process and
// SIGKILLs it once it has committed; it returns the commit.
func crashWriter(t *testing.T, dir string) Hash {
	t.Helper()
	return crashHelper(t, dir, "TestCrashedWriterHelper", 0)
}

// killAfterLine runs the test function helper in a new process, with dir
// in ZONEGIT_TEST_CRASH_WRITER, SIGKILLs it delay after it has printed a
// line, and returns that line.
func killAfterLine(t *testing.T, dir, helper string, delay time.Duration) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ZONEGIT_TEST_CRASH_WRITER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	time.Sleep(delay)
	if kerr := cmd.Process.Kill(); kerr != nil {
		t.Fatal(kerr)
	}
	_ = cmd.Wait()
	if err != nil {
		t.Fatalf("%s said %q (%v)", helper, line, err)
	}
	return strings.TrimSpace(line)
}

// crashHelper runs the test helper named helper on dir in a new process
// and SIGKILLs it once it prints "committed <hash>"; it returns the hash.
func crashHelper(t *testing.T, dir, helper string, delay time.Duration) Hash {
	t.Helper()
	line := killAfterLine(t, dir, helper, delay)
	hex, ok := strings.CutPrefix(line, "committed ")
	if !ok {
		t.Fatalf("writer said %q", line)
	}
	h, err := ParseHash(hex)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// commitAndWait is the end of a crash helper: it commits the test zone
// with w, prints the commit for crashHelper, and waits for SIGKILL.
func commitAndWait(t *testing.T, w *Repo) {
	res, err := importString(t, w, "example.com.", "", openTestZone)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("committed", res.Commit)
	time.Sleep(time.Minute)
	os.Exit(1)
}

// TestCrashedWriterIsReadable: after a writer is SIGKILLed, readers open
// the repository (Badger's read-only open refuses: "Log truncate
// required") without changing it, and a writer then recovers it.
func TestCrashedWriterIsReadable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	commit := crashWriter(t, dir)
	if m, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(m) == 0 {
		t.Fatal("the killed writer left no write-ahead log; nothing to recover")
	}
	before := dirstate.Listing(t, dir)
	for _, opts := range []Options{{ReadOnly: true}, {ReadOnly: true, Detached: true}} {
		r, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("open %+v after a crash: %v", opts, err)
		}
		tip, err := r.Branch("example.com.", "main")
		if err != nil || tip != commit {
			t.Errorf("open %+v: main = %s, %v; want %s", opts, tip.Short(), err, commit.Short())
		}
		rep, err := r.Fsck(context.Background())
		if err != nil || !rep.OK() {
			t.Errorf("open %+v: fsck %+v, %v", opts, rep, err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		dirstate.Unchanged(t, "the read-only open", dir, before)
	}
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("writer after the crash: %v", err)
	}
	defer w.Close()
	if tip, err := w.Branch("example.com.", "main"); err != nil || tip != commit {
		t.Errorf("writer: main = %s, %v; want %s", tip.Short(), err, commit.Short())
	}
}

// TestReadersAndWritersTakeTurns: readers never open a directory a writer
// has; writers wait for attached readers and not for detached ones; a
// second writer fails at once.
func TestReadersAndWritersTakeTurns(t *testing.T) {
	dir, res := closedRepo(t)

	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Open(dir, Options{ReadOnly: true, LockWait: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("reader beside a writer: %v; want ErrLocked naming the writer's pid", err)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("reader gave up after %s, before LockWait", time.Since(start))
	}
	start = time.Now()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) || time.Since(start) > 2*time.Second {
		t.Errorf("second writer: %v after %s; want ErrLocked at once", err, time.Since(start))
	}
	c1, err := w.PutObject(KindBlob, mustBlob(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.UpdateBranch("example.com.", "second", ZeroHash, res.Commit, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// An attached reader holds the directory: a writer waits for it.
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{LockWait: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "read") {
		t.Errorf("writer beside a reader: %v; want ErrLocked saying it is being read", err)
	}
	opened := make(chan error, 1)
	go func() {
		w, err := Open(dir, Options{})
		if err == nil {
			err = w.Close()
		}
		opened <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if ok, err := r.Has(c1); err != nil || !ok {
		t.Errorf("reader: Has = %v, %v", ok, err)
	}
	r.Close()
	if err := <-opened; err != nil {
		t.Errorf("writer waiting for a reader: %v", err)
	}

	// A detached reader lets go at once and keeps its view.
	d, err := Open(dir, Options{ReadOnly: true, Detached: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err = Open(dir, Options{LockWait: time.Second})
	if err != nil {
		t.Fatalf("writer beside a detached reader: %v", err)
	}
	if err := w.UpdateBranch("example.com.", "third", ZeroHash, res.Commit, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Branch("example.com.", "third"); !errors.Is(err, ErrNotFound) {
		t.Errorf("detached snapshot sees a later commit: %v", err)
	}
	d2, err := Open(dir, Options{ReadOnly: true, Detached: true, Reuse: d})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if tip, err := d2.Branch("example.com.", "third"); err != nil || tip != res.Commit {
		t.Errorf("new snapshot: third = %s, %v", tip.Short(), err)
	}
	reused := 0
	for name := range d2.snap.copied {
		a, errA := os.Stat(filepath.Join(d.snap.dir, name))
		b, errB := os.Stat(filepath.Join(d2.snap.dir, name))
		if errA == nil && errB == nil && os.SameFile(a, b) {
			reused++
		}
	}
	if reused == 0 {
		t.Error("the new snapshot copied every file again; unchanged tables should be linked from the previous one")
	}
	if rep, err := d2.Fsck(context.Background()); err != nil || !rep.OK() {
		t.Errorf("fsck of the reused snapshot: %+v, %v", rep, err)
	}
}

func mustBlob(t *testing.T) []byte {
	t.Helper()
	p, err := (&Blob{Owner: "x.example.com.", Class: 1, Type: 1, TTL: 60, RData: [][]byte{{192, 0, 2, 9}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNoSpaceIsAnError injects a nearly full filesystem (a real full one
// is in cmd/zonegit-replicate TestDiskFullCLI, which needs root for a
// tmpfs): writers refuse to start, or stop mid-batch, with an error naming
// the repository, and nothing written before is lost.
func TestNoSpaceIsAnError(t *testing.T) {
	dir, res := closedRepo(t)
	free := int64(10 << 20)
	statFree = func(string) (int64, error) { return free, nil }
	t.Cleanup(func() { statFree = freeSpace })

	_, err := Open(dir, Options{})
	var ns *NoSpaceError
	if !errors.As(err, &ns) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("writer on a full filesystem: %v; want ENOSPC naming %s", err, dir)
	}

	free = 1 << 30
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	free = 10 << 20 // the filesystem fills while we write
	payload := make([]byte, 64<<10)
	for i := 0; ; i++ {
		payload[0], payload[1] = byte(i), byte(i>>8)
		if _, err = b.PutObject(KindBlob, payload); err != nil || i > 100 {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Errorf("batch on a filling filesystem: %v; want ENOSPC naming %s", err, dir)
	}
	b.Cancel()
	if err := w.UpdateBranch("example.com.", "main", res.Commit, ZeroHash, nil); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("ref update on a full filesystem: %v; want ENOSPC", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("reader on a full filesystem: %v", err)
	}
	defer r.Close()
	if tip, err := r.Branch("example.com.", "main"); err != nil || tip != res.Commit {
		t.Errorf("main = %s, %v; want %s", tip.Short(), err, res.Commit.Short())
	}
	if rep, err := r.Fsck(context.Background()); err != nil || !rep.OK() {
		t.Errorf("fsck %+v, %v", rep, err)
	}
}

// TestEmptyLogIsDropped: a writer killed between creating a write-ahead
// log and sizing it leaves an empty .mem file, on which Badger's open
// fails ("Create a new file"). Every kind of open succeeds, sees the
// commit, and the read-only opens leave the directory as it was.
func TestEmptyLogIsDropped(t *testing.T) {
	dir, res := closedRepo(t)
	empty := filepath.Join(dir, "00099.mem") // Badger names logs %05d.mem
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirstate.Listing(t, dir)
	for _, opts := range []Options{{ReadOnly: true}, {ReadOnly: true, Detached: true}, {Bulk: true}, {}} {
		r, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("open %+v with an empty write-ahead log: %v", opts, err)
		}
		tip, err := r.Branch("example.com.", "main")
		if err != nil || tip != res.Commit {
			t.Errorf("open %+v: main = %s, %v; want %s", opts, tip.Short(), err, res.Commit.Short())
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if opts.ReadOnly {
			dirstate.Unchanged(t, "a read-only open", dir, before)
		}
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("the writer left the empty log %s (%v)", empty, err)
	}
	fsckOK(t, dir)
}
