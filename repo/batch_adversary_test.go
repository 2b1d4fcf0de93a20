package repo

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// TestBatchAdversaryPutAfterCloseFails: a Batch whose repository was
// closed under it (a command's shutdown racing a writer) reports errors
// from Put, Flush and Cancel; none of them may hang, and Flush must not
// report success for objects that were never written.
func TestBatchAdversaryPutAfterCloseFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := importString(t, r, "example.com.", "", openTestZone); err != nil {
		t.Fatal(err)
	}
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var putErr error
		// Enough objects for Badger's loader to send several requests.
		for i := 0; i < 40000 && putErr == nil; i++ {
			_, putErr = b.PutObject(KindBlob, fmt.Appendf(nil, "after close %d %s", i, bytes.Repeat([]byte{1}, 500)))
		}
		// A Put that failed fails every later Put and the Flush: the
		// loader reports a failed write only once.
		var againErr error
		if putErr != nil {
			_, againErr = b.PutObject(KindBlob, []byte("after the error"))
		}
		ferr := b.Flush()
		b.Cancel()
		switch {
		case putErr == nil && ferr == nil:
			done <- fmt.Errorf("Put and Flush on a closed repository reported success")
		case putErr != nil && againErr == nil:
			done <- fmt.Errorf("a Put after a failed Put (%v) succeeded", putErr)
		case putErr != nil && ferr == nil:
			done <- fmt.Errorf("Flush after a failed Put (%v) succeeded", putErr)
		default:
			done <- nil
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Put/Flush/Cancel on a batch of a closed repository hung")
	}
}

// batchAdversaryObjects are the blobs TestBatchAdversaryKilledHelper
// stores, by tag: small ones that stay in tables, and ones on either side
// of the incremental handle's value threshold (256 KiB) and of Badger's
// default one (1 MiB).
func batchAdversaryObjects(tag string) [][]byte {
	var ps [][]byte
	for i := 0; i < 3000; i++ {
		ps = append(ps, fmt.Appendf(nil, "%s small %d %s", tag, i, bytes.Repeat([]byte{byte(i)}, 1000)))
	}
	for _, size := range []int{300 << 10, 700 << 10, 2 << 20, 5 << 20} {
		ps = append(ps, bytes.Repeat(fmt.Appendf(nil, "%s%08d", tag, size), size/(len(tag)+8)))
	}
	return ps
}

// TestBatchAdversaryKilledHelper is the writer TestBatchAdversaryKilled
// kills: two batches opened before either stores anything (on a new
// repository both start without a committed version), the large objects
// in one (as a pull writes them ahead) flushed while the other fills,
// every large object and one small one stored twice, then a commit and a
// ref; it reports the commit and waits for SIGKILL.
func TestBatchAdversaryKilledHelper(t *testing.T) {
	dir := os.Getenv("ZONEGIT_TEST_CRASH_WRITER")
	if dir == "" {
		t.Skip("helper process only")
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	w, err := Open(dir, Options{Bulk: true})
	if err != nil {
		fail(err)
	}
	b1, err := w.NewBatch()
	if err != nil {
		fail(err)
	}
	b2, err := w.NewBatch()
	if err != nil {
		fail(err)
	}
	ps := batchAdversaryObjects(os.Getenv("ZONEGIT_TEST_BATCH_TAG"))
	large := ps[len(ps)-2:]
	for _, p := range large {
		if _, err := b2.PutObject(KindBlob, p); err != nil {
			fail(err)
		}
	}
	ahead := make(chan error, 1)
	go func() { ahead <- b2.Flush() }()
	for _, p := range append(append(ps, ps[7]), large...) {
		if _, err := b1.PutObject(KindBlob, p); err != nil {
			fail(err)
		}
	}
	if err := <-ahead; err != nil {
		fail(err)
	}
	if err := b1.Flush(); err != nil {
		fail(err)
	}
	res, err := importString(t, w, "example.com.", "", openTestZone)
	if err != nil {
		fail(err)
	}
	fmt.Println("committed", res.Commit)
	time.Sleep(time.Minute)
	os.Exit(1)
}

// TestBatchAdversaryKilled: a writer killed after its batches' Flush and a
// ref (a new repository, and one with tables, whose command handle writes
// with 2 MiB memtables and a 256 KiB value threshold) leaves a log that
// each kind of handle recovers with every object and the ref: a read-only
// snapshot, this package's writer (a command's handle, a daemon's), and
// Badger's own writable open with default options; each recovered copy
// then reads back with a default-options read-only open and passes fsck.
func TestBatchAdversaryKilled(t *testing.T) {
	for _, mode := range []string{"new", "tables"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			want := map[Hash][]byte{}
			if mode == "tables" {
				r, err := Open(dir, Options{Bulk: true})
				if err != nil {
					t.Fatal(err)
				}
				want = loadTables(t, r, 1)
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("ZONEGIT_TEST_BATCH_TAG", mode)
			for _, p := range batchAdversaryObjects(mode) {
				want[HashObject(KindBlob, p)] = p
			}
			commit := crashHelper(t, dir, "TestBatchAdversaryKilledHelper", 0)
			if m, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(m) == 0 {
				t.Fatal("the killed writer left no write-ahead log")
			}
			check := func(what string, r *Repo) {
				t.Helper()
				if tip, err := r.Branch("example.com.", "main"); err != nil || tip != commit {
					t.Errorf("%s: main = %s, %v; want %s", what, tip.Short(), err, commit.Short())
				}
				missing := 0
				for h, p := range want {
					kind, got, err := r.Get(h)
					if err != nil || kind != KindBlob || !bytes.Equal(got, p) {
						missing++
						if missing < 3 {
							t.Errorf("%s: object %s (%d bytes): %s, %d bytes, %v", what, h.Short(), len(p), kind, len(got), err)
						}
					}
				}
				if missing > 0 {
					t.Errorf("%s: %d of %d objects missing or wrong", what, missing, len(want))
				}
			}
			kinds := []struct {
				name string
				open func(t *testing.T, dir string)
			}{
				{"read-only snapshot", func(t *testing.T, dir string) {
					r, err := Open(dir, Options{ReadOnly: true})
					if err != nil {
						t.Fatal(err)
					}
					check("read-only snapshot", r)
					if err := r.Close(); err != nil {
						t.Fatal(err)
					}
				}},
				{"command handle", func(t *testing.T, dir string) {
					r, err := Open(dir, Options{Bulk: true})
					if err != nil {
						t.Fatal(err)
					}
					check("command handle", r)
					if err := r.Close(); err != nil {
						t.Fatal(err)
					}
				}},
				{"writer", func(t *testing.T, dir string) {
					r, err := Open(dir, Options{})
					if err != nil {
						t.Fatal(err)
					}
					check("writer", r)
					if err := r.Close(); err != nil {
						t.Fatal(err)
					}
				}},
				{"badger defaults", func(t *testing.T, dir string) {
					db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
					if err != nil {
						t.Fatal(err)
					}
					if err := db.Close(); err != nil {
						t.Fatal(err)
					}
				}},
			}
			for _, k := range kinds {
				cp := filepath.Join(t.TempDir(), "copy")
				if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
					t.Fatal(err)
				}
				k.open(t, cp)
				if k.name != "read-only snapshot" {
					// A reader leaves the log as it is, which Badger's
					// read-only open refuses (TestCrashedWriterIsReadable).
					readDefault(t, cp, want, len(want))
				}
				fsckOK(t, cp)
				r, err := Open(cp, Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				check(k.name+", then read-only", r)
				r.Close()
			}
		})
	}
}

// TestBatchAdversaryEqualVersions: a Batch's entries take the version of
// the last commit, so the same object can be in several tables under one
// version (stored again by a later batch before any commit, as a pull's
// write ahead and its batch can), and under versions older than tables
// that hold it already (a batch opened before a commit, flushed after
// another batch's). After Badger's compaction merges them all, in a
// repository whose versions were pushed up by many commits, every object
// reads back once, with a default-options read-only open too, and fsck
// passes.
func TestBatchAdversaryEqualVersions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		z := fmt.Sprintf("$ORIGIN example.com.\n@ IN SOA ns1 host %d 2 3 4 5\nwww IN A 192.0.2.1\n", i+1)
		if _, err := importString(t, r, "example.com.", "", z); err != nil {
			t.Fatal(err)
		}
	}
	ps := batchAdversaryObjects("equal")
	want := map[Hash][]byte{}
	for _, p := range ps {
		want[HashObject(KindBlob, p)] = p
	}
	put := func(b *Batch, ps [][]byte) {
		t.Helper()
		for _, p := range ps {
			if _, err := b.PutObject(KindBlob, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	flushMem := func() {
		t.Helper()
		// Force the memtable into a level-0 table, so copies end up in
		// different tables.
		put2, err := r.NewBatch()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 9000 {
			if _, err := put2.PutObject(KindBlob, fmt.Appendf(nil, "filler %d %s", i, bytes.Repeat([]byte{2}, 1000))); err != nil {
				t.Fatal(err)
			}
		}
		if err := put2.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	old, err := r.NewBatch() // opened before the commits below
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.NewBatch()
	put(a, ps)
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	flushMem()
	b, _ := r.NewBatch() // same version as a: no commit since
	put(b, ps[:len(ps)/2])
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	flushMem()
	if _, err := importString(t, r, "example.com.", "", openTestZone); err != nil {
		t.Fatal(err)
	}
	c, _ := r.NewBatch() // a newer version
	put(c, ps[len(ps)/3:])
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	put(old, ps) // an older version than c's, after it
	if err := old.Flush(); err != nil {
		t.Fatal(err)
	}
	for h, p := range want {
		if _, got, err := r.Get(h); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("before compaction: object %s: %d bytes, %v", h.Short(), len(got), err)
		}
	}
	if n := r.db.Levels()[0].NumTables; n < 2 {
		t.Fatalf("level 0 holds %d tables: the copies should be in several", n)
	}
	if err := r.read(func() error { return r.db.Flatten(1) }); err != nil {
		t.Fatal(err)
	}
	n := 0
	seen := map[Hash]bool{}
	err = r.ForEachObject(func(h Hash, kind Kind, payload []byte) error {
		n++
		if seen[h] {
			return fmt.Errorf("object %s iterated twice", h.Short())
		}
		seen[h] = true
		if p, ok := want[h]; ok && !bytes.Equal(payload, p) {
			return fmt.Errorf("object %s reads back %d bytes, want %d", h.Short(), len(payload), len(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for h := range want {
		if !seen[h] {
			t.Errorf("object %s not iterated", h.Short())
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	readDefault(t, dir, want, len(want))
	fsckOK(t, dir)
}

// TestBatchAdversaryKilledMidBatchHelper is the writer
// TestBatchAdversaryKilledMidBatch kills: it commits a ref, reports it,
// then writes batches without end (a large object ahead in a batch of its
// own, flushed while the other fills), never committing again.
func TestBatchAdversaryKilledMidBatchHelper(t *testing.T) {
	dir := os.Getenv("ZONEGIT_TEST_CRASH_WRITER")
	if dir == "" {
		t.Skip("helper process only")
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	w, err := Open(dir, Options{Bulk: true})
	if err != nil {
		fail(err)
	}
	res, err := importString(t, w, "example.com.", "", openTestZone)
	if err != nil {
		fail(err)
	}
	fmt.Println("committed", res.Commit)
	for round := 0; ; round++ {
		b, err := w.NewBatch()
		if err != nil {
			fail(err)
		}
		a, err := w.NewBatch()
		if err != nil {
			fail(err)
		}
		if _, err := a.PutObject(KindBlob, bytes.Repeat(fmt.Appendf(nil, "ahead %d ", round), 200000)); err != nil {
			fail(err)
		}
		ahead := make(chan error, 1)
		go func() { ahead <- a.Flush() }()
		for i := 0; i < 2000; i++ {
			if _, err := b.PutObject(KindBlob, fmt.Appendf(nil, "round %d object %d %s", round, i, bytes.Repeat([]byte{byte(i)}, 100+i%700))); err != nil {
				fail(err)
			}
		}
		if err := <-ahead; err != nil {
			fail(err)
		}
		if err := b.Flush(); err != nil {
			fail(err)
		}
	}
}

// TestBatchAdversaryKilledMidBatch: a writer killed at some moment while
// batches are being handed to Badger (loader requests in flight, entries
// without transaction marks in its log, memtables being replaced) leaves a
// repository whose ref is intact and that every kind of handle recovers
// into one a default-options read-only open reads and fsck passes.
func TestBatchAdversaryKilledMidBatch(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	for _, mode := range []string{"new", "tables"} {
		for _, delay := range []time.Duration{30 * time.Millisecond, 300 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/%s", mode, delay), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "repo")
				if mode == "tables" {
					r, err := Open(dir, Options{Bulk: true})
					if err != nil {
						t.Fatal(err)
					}
					loadTables(t, r, 1)
					if err := r.Close(); err != nil {
						t.Fatal(err)
					}
				}
				commit := crashHelper(t, dir, "TestBatchAdversaryKilledMidBatchHelper", delay)
				for _, opts := range []Options{{ReadOnly: true}, {Bulk: true}, {}} {
					cp := filepath.Join(t.TempDir(), "copy")
					if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
						t.Fatal(err)
					}
					r, err := Open(cp, opts)
					if err != nil {
						t.Fatalf("open %+v after the kill: %v", opts, err)
					}
					if tip, err := r.Branch("example.com.", "main"); err != nil || tip != commit {
						t.Errorf("open %+v: main = %s, %v; want %s", opts, tip.Short(), err, commit.Short())
					}
					if err := r.Close(); err != nil {
						t.Fatal(err)
					}
					if !opts.ReadOnly {
						readDefault(t, cp, nil, 0)
					}
					fsckOK(t, cp)
				}
			})
		}
	}
}

// TestBatchAdversaryKilledInOwnMergeHelper is the command
// TestBatchAdversaryKilledInOwnMerge kills: it opens a repository with
// maxLevelZeroPiled level-0 tables (so its Close merges level 0), stores
// objects, commits, reports, and closes.
func TestBatchAdversaryKilledInOwnMergeHelper(t *testing.T) {
	dir := os.Getenv("ZONEGIT_TEST_CRASH_WRITER")
	if dir == "" {
		t.Skip("helper process only")
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	w, err := Open(dir, Options{Bulk: true})
	if err != nil {
		fail(err)
	}
	if !w.merge {
		fail(fmt.Errorf("the handle does not merge in its Close"))
	}
	b, err := w.NewBatch()
	if err != nil {
		fail(err)
	}
	for i := 0; i < 3000; i++ {
		if _, err := b.PutObject(KindBlob, fmt.Appendf(nil, "merge run %d %s", i, bytes.Repeat([]byte{byte(i)}, 500))); err != nil {
			fail(err)
		}
	}
	if err := b.Flush(); err != nil {
		fail(err)
	}
	res, err := importString(t, w, "example.com.", "", openTestZone)
	if err != nil {
		fail(err)
	}
	fmt.Println("committed", res.Commit)
	if err := w.Close(); err != nil {
		fail(err)
	}
	time.Sleep(time.Minute)
}

// TestBatchAdversaryKilledInOwnMerge: a command whose Close merges level 0
// (it opened on maxLevelZeroPiled tables), killed at moments from its
// commit through its Close (memtable flush, merge behind the marker),
// leaves a repository that opens with each kind of handle with the ref,
// reads back with a default-options read-only open once a writer
// recovered it, and passes fsck.
func TestBatchAdversaryKilledInOwnMerge(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	build := func(t *testing.T) (string, map[Hash][]byte) {
		dir := filepath.Join(t.TempDir(), "repo")
		r, err := Open(dir, Options{Bulk: true})
		if err != nil {
			t.Fatal(err)
		}
		want := loadTables(t, r, 1)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for run := 0; ; run++ {
			n, err := levelZeroTables(dir)
			if err != nil {
				t.Fatal(err)
			}
			if n >= maxLevelZeroPiled {
				return dir, want
			}
			r, err := Open(dir, Options{Bulk: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				p := fmt.Appendf(nil, "pile %d object %d", run, i)
				h, err := r.PutObject(KindBlob, p)
				if err != nil {
					t.Fatal(err)
				}
				want[h] = p
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	landed := map[string]int{}
	for _, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			dir, want := build(t)
			commit := crashHelper(t, dir, "TestBatchAdversaryKilledInOwnMergeHelper", delay)
			_, merr := os.Stat(filepath.Join(dir, bulkCloseName))
			mems, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
			state := fmt.Sprintf("marker %v, logs %d", merr == nil, len(mems))
			landed[state]++
			t.Log("killed with", state)
			if len(mems) == 0 {
				// No log to replay: the daemon's default-options read-only
				// open reads the repository as the kill left it.
				cp := filepath.Join(t.TempDir(), "raw")
				if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
					t.Fatal(err)
				}
				readDefault(t, cp, want, len(want))
			}
			for _, opts := range []Options{{ReadOnly: true}, {Bulk: true}, {}} {
				cp := filepath.Join(t.TempDir(), "copy")
				if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
					t.Fatal(err)
				}
				r, err := Open(cp, opts)
				if err != nil {
					t.Fatalf("open %+v after the kill (%s): %v", opts, state, err)
				}
				if tip, err := r.Branch("example.com.", "main"); err != nil || tip != commit {
					t.Errorf("open %+v: main = %s, %v; want %s", opts, tip.Short(), err, commit.Short())
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				if !opts.ReadOnly {
					readDefault(t, cp, want, len(want))
				}
				fsckOK(t, cp)
			}
		})
	}
	t.Log("kills landed:", landed)
}
