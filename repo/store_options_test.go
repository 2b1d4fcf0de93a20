package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// TestWriterOptionsReadableWithDefaults writes a repository through Open's
// writer options (compression, table and memtable sizes) with enough data
// for several memtable flushes and compactions, closes it, and reads every
// object and ref back through a Badger opened the way a zonegit daemon opens
// it: DefaultOptions, read-only, without the lock. Table settings are
// per-table metadata, so a default-options reader must see everything.
func TestWriterOptionsReadableWithDefaults(t *testing.T) {
	// About 25 MB of keys and values: several flushed memtables (fewer
	// would not test what the test is for, so -short does not shrink it).
	n := 150000
	dir := t.TempDir()
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Hash][]byte{}
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		// Text-like payloads that compress somewhat, like zone records.
		p := fmt.Appendf(nil, "h%d.bench.test. 300 IN A 10.%d.%d.%d ; %x", i, i>>16&255, i>>8&255, i&255, binary.BigEndian.AppendUint64(nil, uint64(i)*0x9e3779b97f4a7c15))
		h, err := b.PutObject(KindBlob, p)
		if err != nil {
			t.Fatal(err)
		}
		if i%97 == 0 {
			want[h] = p
		}
	}
	// One object above Badger's default value threshold (1 MiB), which
	// lives in the value log rather than in a table.
	big := bytes.Repeat([]byte("0123456789abcdef"), 2<<20/16)
	bigHash, err := b.PutObject(KindBlob, big)
	if err != nil {
		t.Fatal(err)
	}
	want[bigHash] = big
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	tip, err := r.PutObject(KindBlob, []byte("tip"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateBranch("example.com.", "main", ZeroHash, tip, nil); err != nil {
		t.Fatal(err)
	}
	stored := 0 // n + 2, plus whatever a first branch adds (HEAD's symref)
	if err := r.ForEachObject(func(Hash, Kind, []byte) error { stored++; return nil }); err != nil {
		t.Fatal(err)
	}
	if stored < n+2 {
		t.Fatalf("stored %d objects, want at least %d", stored, n+2)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(ssts) < 2 {
		t.Fatalf("%d table files; the test should write enough to flush several memtables", len(ssts))
	}

	db, err := badger.Open(badger.DefaultOptions(dir).WithReadOnly(true).WithBypassLockGuard(true).WithLogger(nil))
	if err != nil {
		t.Fatalf("default-options read-only open: %v", err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		for h, p := range want {
			item, err := txn.Get(objKey(h))
			if err != nil {
				return fmt.Errorf("object %s: %w", h, err)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("object %s: %w", h, err)
			}
			kind, payload, err := decodeObjectValue(h, v)
			if err != nil {
				return err
			}
			if kind != KindBlob || !bytes.Equal(payload, p) {
				return fmt.Errorf("object %s: read back %s of %d bytes, want blob of %d", h, kind, len(payload), len(p))
			}
		}
		// Every object is there and decodes: count them by iteration too.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(objPrefix)})
		defer it.Close()
		count := 0
		for it.Rewind(); it.Valid(); it.Next() {
			count++
		}
		if count != stored {
			return fmt.Errorf("iterated %d objects, the writer stored %d", count, stored)
		}
		item, err := txn.Get(refKey(BranchRef("example.com.", "main")))
		if err != nil {
			return fmt.Errorf("branch ref: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(v, tip[:]) {
			return fmt.Errorf("branch ref holds %x, want %s", v, tip)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewTransaction(false).Get([]byte("o/missing")); !errors.Is(err, badger.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

// TestBulkLoadCompactsOnClose: a bulk open of a new directory lets level 0
// grow past a writer's compaction trigger while it loads, and Close merges
// everything into one level, which a default-options reader reads and fsck
// passes; a bulk open of a directory that has tables is an ordinary writer
// (Close leaves its flushed memtable in level 0 rather than rewriting the
// tables it overlaps).
func TestBulkLoadCompactsOnClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	// ~1 KB payloads: an 8 MiB memtable holds ~8k of them, so 80k objects
	// flush about ten memtables, more than the 5 level-0 tables at which a
	// writer compacts.
	const n = 80000
	want := map[Hash][]byte{}
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		p := fmt.Appendf(nil, "%d %s", i, bytes.Repeat(binary.BigEndian.AppendUint64(nil, uint64(i)*0x9e3779b97f4a7c15), 120))
		h, err := b.PutObject(KindBlob, p)
		if err != nil {
			t.Fatal(err)
		}
		if i%101 == 0 {
			want[h] = p
		}
		if i%(1<<13) == 0 { // flushed and synced as a pull does, every so often
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			if b, err = r.NewBatch(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	// A branch for fsck to walk.
	zone := "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
	if _, err := r.Import(context.Background(), ImportOptions{Zone: "example.com.", Branch: "main", Source: strings.NewReader(zone)}); err != nil {
		t.Fatal(err)
	}
	levels := r.db.Levels()
	if levels[0].NumTables <= 5 {
		t.Errorf("level 0 holds %d tables during the load; the test should flush more than 5 memtables", levels[0].NumTables)
	}
	for _, l := range levels[1:] {
		if l.NumTables > 0 {
			t.Errorf("level %d holds %d tables during a bulk load: compaction did not wait for Close", l.Level, l.NumTables)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	filled := readDefault(t, dir, want, n+1)
	if len(filled) != 1 || filled[0] == 0 {
		t.Errorf("after a bulk load's Close, tables are in levels %v; want all in one level other than 0", filled)
	}
	r, err = Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Fsck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("fsck after a bulk load: %v", rep.Problems)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// The directory has tables now: Bulk makes no bulk load (incrementalOptions).
	r, err = Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.PutObject(KindBlob, []byte("one more"))
	if err != nil {
		t.Fatal(err)
	}
	want[h] = []byte("one more")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if filled := readDefault(t, dir, want, n+2); len(filled) != 2 || filled[0] != 0 {
		t.Errorf("after a bulk open of a repository with tables, tables are in levels %v; want the flushed memtable left in level 0 beside the rest", filled)
	}
}

// readDefault opens dir the way a zonegit daemon does (default options,
// read-only), checks that it holds the objects of want and at least count
// objects in all, and returns the levels that hold tables.
func readDefault(t *testing.T, dir string, want map[Hash][]byte, count int) []int {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithReadOnly(true).WithBypassLockGuard(true).WithLogger(nil))
	if err != nil {
		t.Fatalf("default-options read-only open: %v", err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		for h, p := range want {
			item, err := txn.Get(objKey(h))
			if err != nil {
				return fmt.Errorf("object %s: %w", h, err)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if _, payload, err := decodeObjectValue(h, v); err != nil || !bytes.Equal(payload, p) {
				return fmt.Errorf("object %s: read back %q (%v)", h, clipBytes(payload), err)
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(objPrefix)})
		defer it.Close()
		stored := 0
		for it.Rewind(); it.Valid(); it.Next() {
			stored++
		}
		if stored < count {
			return fmt.Errorf("iterated %d objects, want at least %d", stored, count)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var filled []int
	for _, l := range db.Levels() {
		if l.NumTables > 0 {
			filled = append(filled, l.Level)
		}
	}
	return filled
}

// TestBulkLoadKeepsRoomForClose: a bulk load's Close rewrites all its
// tables, in Badger goroutines where a full filesystem is SIGBUS, so the
// load stops with a *NoSpaceError while the filesystem still has room for
// that copy, where an ordinary writer would go on; Close then succeeds and
// what was flushed before is kept.
func TestBulkLoadKeepsRoomForClose(t *testing.T) {
	free := int64(1 << 40)
	statFree = func(string) (int64, error) { return free, nil }
	t.Cleanup(func() { statFree = freeSpace })

	// load writes ~1 KB objects through one batch per 4Ki until level 0
	// holds tables tables or more, and returns the writer with a new batch.
	load := func(dir string, opts Options, tables int) (*Repo, *Batch, int64) {
		r, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.NewBatch()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; r.db.Levels()[0].NumTables < tables; i++ {
			if _, err := b.PutObject(KindBlob, fmt.Appendf(nil, "%d %s", i, bytes.Repeat([]byte{byte(i)}, 1000))); err != nil {
				t.Fatal(err)
			}
			if i%4096 == 4095 {
				if err := b.Flush(); err != nil {
					t.Fatal(err)
				}
				if b, err = r.NewBatch(); err != nil {
					t.Fatal(err)
				}
			}
		}
		var size int64
		for _, l := range r.db.Levels() {
			size += l.Size
		}
		return r, b, size
	}
	// more writes into b until it fails or has handed Badger 4 MiB (four
	// free-space checks).
	more := func(b *Batch) error {
		for i := 0; i < 4096; i++ {
			if _, err := b.PutObject(KindBlob, fmt.Appendf(nil, "more %d %s", i, bytes.Repeat([]byte{1}, 1000))); err != nil {
				return err
			}
		}
		return b.Flush()
	}

	r, b, size := load(filepath.Join(t.TempDir(), "ordinary"), Options{}, 2)
	free = minFreeSpace + size/2
	if err := more(b); err != nil {
		t.Errorf("an ordinary writer with %d MiB free, more than %d MiB: %v", free>>20, minFreeSpace>>20, err)
	}
	free = 1 << 40
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "bulk")
	// Enough tables that Close merges them (mergeLevelZero).
	r, b, size = load(dir, Options{Bulk: true}, maxLevelZeroKept+1)
	free = minFreeSpace + size/2
	err := more(b)
	var ns *NoSpaceError
	if !errors.As(err, &ns) || ns.Need < minFreeSpace+size || !strings.Contains(err.Error(), dir) {
		t.Errorf("a bulk load with %d MiB free and %d MiB of tables: %v; want a *NoSpaceError naming %s that needs both", free>>20, size>>20, err, dir)
	}
	b.Cancel()
	free = 1 << 40
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if filled := readDefault(t, dir, nil, 8192); len(filled) != 1 || filled[0] == 0 {
		t.Errorf("after Close, tables are in levels %v; want one level other than 0", filled)
	}
}

// TestBulkLoadSmallSkipsMerge: a bulk load that leaves no more level-0
// tables than any writer may (maxLevelZeroKept) is not merged at Close:
// its tables stay in level 0, no marker is left, and a default-options
// read-only open (the zonegit daemon) reads every object.
func TestBulkLoadSmallSkipsMerge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	want := loadTables(t, r, 2) // two memtables' worth, flushed as a pull does
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, bulkCloseName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a small bulk load left the merge marker (%v)", err)
	}
	mf, err := readManifest(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	for _, tm := range mf.Tables {
		if tm.Level != 0 {
			t.Fatalf("a small bulk load was merged: a table in level %d", tm.Level)
		}
		zero++
	}
	if zero < 2 || zero > maxLevelZeroKept {
		t.Fatalf("%d level-0 tables, want 2..%d", zero, maxLevelZeroKept)
	}
	readDefault(t, dir, want, len(want))
}

// TestMergeLevelZeroSkipsWhenTaken: the merge after a bulk load opens the
// directory again; when a writer or a reader took it in between, the
// merge is skipped without an error (the load is complete; the tables
// stay as they are) and nothing is damaged.
func TestMergeLevelZeroSkipsWhenTaken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	w, err := Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	want := loadTables(t, w, maxLevelZeroKept+1)
	// A writer has it (the load itself, still open).
	if err := mergeLevelZero(dir, nil, maxLevelZeroKept); err != nil {
		t.Fatalf("merge while a writer has the directory: %v", err)
	}
	// The load's handle closed without its merge (as if the merge's open
	// lost the race), and a reader takes the directory.
	if err := w.db.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := lockShared(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := mergeLevelZero(dir, nil, maxLevelZeroKept); err != nil {
		t.Fatalf("merge while a reader has the directory: %v", err)
	}
	if filled := readDefault(t, dir, want, len(want)); len(filled) != 1 || filled[0] != 0 {
		t.Fatalf("a merge that found a reader moved tables: levels %v", filled)
	}
	if err := l.unlock(); err != nil {
		t.Fatal(err)
	}
	// Free again: the merge runs.
	if err := mergeLevelZero(dir, nil, maxLevelZeroKept); err != nil {
		t.Fatal(err)
	}
	if filled := readDefault(t, dir, want, len(want)); len(filled) != 1 || filled[0] == 0 {
		t.Fatalf("after the merge, tables are in levels %v; want one level other than 0", filled)
	}
}

// TestShortWritersDoNotPileUpLevelZero: a writer that stores a little and
// closes (a command's incremental pull) leaves one small level-0 table,
// and Badger's compactors never run in so short a handle; Close merges
// them once more than maxLevelZeroPiled have piled up, so level 0 stays
// bounded however many commands run, and every object stays readable
// with default options.
func TestShortWritersDoNotPileUpLevelZero(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	want := map[Hash][]byte{}
	levelZero := func() int {
		t.Helper()
		mf, err := readManifest(filepath.Join(dir, manifestName))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, tm := range mf.Tables {
			if tm.Level == 0 {
				n++
			}
		}
		return n
	}
	most, merged := 0, false
	for run := 0; run < 3*maxLevelZeroPiled; run++ {
		r, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		putAndClose(t, r, run, want)
		n := levelZero()
		if n > maxLevelZeroPiled {
			t.Fatalf("after run %d, %d level-0 tables: more than %d piled up", run, n, maxLevelZeroPiled)
		}
		if n < most {
			merged = true
		}
		most = max(most, n)
	}
	if !merged || most < maxLevelZeroPiled {
		t.Fatalf("level 0 peaked at %d tables and was merged: %v; want it to reach %d and be merged", most, merged, maxLevelZeroPiled)
	}
	readDefault(t, dir, want, len(want))
}

// loadTables writes ~1 KB blobs into r through batches flushed every 4Ki
// objects, as a pull does, until level 0 holds tables tables, and returns
// every 97th object written.
func loadTables(t *testing.T, r *Repo, tables int) map[Hash][]byte {
	t.Helper()
	want := map[Hash][]byte{}
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; r.db.Levels()[0].NumTables < tables; i++ {
		p := fmt.Appendf(nil, "%d %s", i, bytes.Repeat([]byte{byte(i)}, 1000))
		h, err := b.PutObject(KindBlob, p)
		if err != nil {
			t.Fatal(err)
		}
		if i%97 == 0 {
			want[h] = p
		}
		if i%4096 == 4095 {
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			if b, err = r.NewBatch(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestIncrementalOptionsReadableWithDefaults: a command's handle on a
// repository that has tables (Options.Bulk, an incremental pull) opens with
// incrementalOptions (level 0 compacted only past maxLevelZeroPiled + 2
// tables, values below 1 MiB kept in the tables); what it writes, across
// several memtable flushes and with objects on both sides of the value
// threshold, reads back through a Badger
// opened the way a zonegit daemon opens it, and fsck passes.
func TestIncrementalOptionsReadableWithDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	want := loadTables(t, r, 1)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r, err = Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.BulkLoad() {
		t.Fatal("a Bulk open of a repository with tables reports a bulk load")
	}
	if got := r.db.Opts().NumLevelZeroTables; got != maxLevelZeroPiled+2 {
		t.Fatalf("NumLevelZeroTables %d: the incremental handle did not open with incrementalOptions", got)
	}
	// A tree of 256 KiB-1 MiB (a zone of ~6,500-25,000 names) stays in the
	// tables: in the value log each pull would leave a file for good.
	if got := r.db.Opts().ValueThreshold; got != 1<<20 {
		t.Fatalf("ValueThreshold %d, want 1 MiB", got)
	}
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	// ~30 MB of ~1 KB objects: three 8 MiB memtables flush during the load.
	for i := 0; i < 30000; i++ {
		p := fmt.Appendf(nil, "incremental %d %s", i, bytes.Repeat([]byte{byte(i)}, 1000))
		h, err := b.PutObject(KindBlob, p)
		if err != nil {
			t.Fatal(err)
		}
		if i%37 == 0 {
			want[h] = p
		}
	}
	// Below the value threshold (in a table) and above it (in the value
	// log).
	for _, size := range []int{200 << 10, 512 << 10, 3 << 20} {
		p := bytes.Repeat(fmt.Appendf(nil, "%08d", size), size/8)
		h, err := b.PutObject(KindBlob, p)
		if err != nil {
			t.Fatal(err)
		}
		want[h] = p
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	zone := "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
	if _, err := r.Import(context.Background(), ImportOptions{Zone: "example.com.", Branch: "main", Source: strings.NewReader(zone)}); err != nil {
		t.Fatal(err)
	}
	if n := r.db.Levels()[0].NumTables; n < 3 {
		t.Fatalf("level 0 holds %d tables: the test should flush several memtables", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	readDefault(t, dir, want, len(want))
	fsckOK(t, dir)
}

// TestIncrementalMergesLevelZeroInItsOwnClose: commands that each write a
// little into a repository that has tables (incremental pulls) leave a
// level-0 table each; the command that opens on maxLevelZeroPiled of them
// merges level 0 in its own Close (CompactL0OnClose, behind the marker)
// instead of a second handle's, the others do not merge, level 0 never
// holds more than maxLevelZeroPiled tables after a Close, no marker is
// left, and everything reads back with default options and passes fsck.
func TestIncrementalMergesLevelZeroInItsOwnClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	want := loadTables(t, r, 1)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	merges := 0
	for run := 0; run < 2*maxLevelZeroPiled+2; run++ {
		before, err := levelZeroTables(dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir, Options{Bulk: true})
		if err != nil {
			t.Fatal(err)
		}
		wantMerge := before >= maxLevelZeroPiled
		if r.merge != wantMerge || r.db.Opts().CompactL0OnClose != wantMerge {
			t.Fatalf("run %d: opened on %d level-0 tables: merge %v, CompactL0OnClose %v; want %v",
				run, before, r.merge, r.db.Opts().CompactL0OnClose, wantMerge)
		}
		putAndClose(t, r, run, want)
		after, err := levelZeroTables(dir)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case wantMerge && after != 0:
			t.Fatalf("run %d: merged in Close, yet %d level-0 tables are left", run, after)
		case !wantMerge && after != before+1:
			t.Fatalf("run %d: %d level-0 tables after Close, want %d (one more)", run, after, before+1)
		case after > maxLevelZeroPiled:
			t.Fatalf("run %d: %d level-0 tables piled up, more than %d", run, after, maxLevelZeroPiled)
		}
		if wantMerge {
			merges++
		}
		if _, err := os.Stat(filepath.Join(dir, bulkCloseName)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("run %d: the merge marker is left (%v)", run, err)
		}
	}
	if merges < 2 {
		t.Fatalf("%d merges in %d runs; want at least 2", merges, 2*maxLevelZeroPiled+2)
	}
	readDefault(t, dir, want, len(want))
	fsckOK(t, dir)
}

// fsckOK runs fsck on dir through a read-only handle and fails on any
// problem.
func fsckOK(t *testing.T, dir string) {
	t.Helper()
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Fsck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("fsck: %v", rep.Problems)
	}
}

// TestIncrementalOpenReplaysLogHelper is the writer
// TestIncrementalOpenReplaysLog kills: on a repository that has tables, it
// stores ~5 MB of objects, which stay in its 8 MiB memtable and its
// write-ahead log, commits, reports, and waits for SIGKILL.
func TestIncrementalOpenReplaysLogHelper(t *testing.T) {
	dir := os.Getenv("ZONEGIT_TEST_CRASH_WRITER")
	if dir == "" {
		t.Skip("helper process only")
	}
	w, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	b, err := w.NewBatch()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for i := 0; i < 5000; i++ {
		if _, err := b.PutObject(KindBlob, fmt.Appendf(nil, "logged %d %s", i, bytes.Repeat([]byte{byte(i)}, 1000))); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	if err := b.Flush(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	commitAndWait(t, w)
}

// TestIncrementalOpenReplaysLog: a writer killed with ~5 MB in its
// memtable leaves a write-ahead log written with 8 MiB memtables; the next
// command's handle (Options.Bulk on a repository with tables) replays it
// (a handle with smaller memtables would make Badger exit: "Arena too
// small"), sees the commit, and closes
// into a repository that reads back with default options and passes fsck.
func TestIncrementalOpenReplaysLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	want := loadTables(t, r, 1)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	commit := crashHelper(t, dir, "TestIncrementalOpenReplaysLogHelper", 0)
	if m, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(m) == 0 {
		t.Fatal("the killed writer left no write-ahead log; nothing to replay")
	}
	r, err = Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatalf("a command's open after the kill: %v", err)
	}
	if tip, err := r.Branch("example.com.", "main"); err != nil || tip != commit {
		t.Errorf("main = %s, %v; want %s", tip.Short(), err, commit.Short())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	readDefault(t, dir, want, len(want)+5000)
	fsckOK(t, dir)
}

// putAndClose writes 50 small objects with r, one command's worth, adds
// them to want, and closes r.
func putAndClose(t *testing.T, r *Repo, run int, want map[Hash][]byte) {
	t.Helper()
	for i := 0; i < 50; i++ {
		p := fmt.Appendf(nil, "run %d object %d", run, i)
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
