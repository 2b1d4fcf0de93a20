package repo

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
)

// Options say how to open a repository. The zero value is a writable
// on-disk repository.
type Options struct {
	// ReadOnly opens a private snapshot of the directory (see the package
	// documentation): the directory is never modified, not even when it is
	// damaged or was left by a writer that crashed. Open fails with
	// ErrLocked while a writer has the directory (unless LockWait lets it
	// wait). The handle holds the directory's shared lock until Close, so
	// writers wait for it (up to DefaultReaderWait): keep it short, or use
	// Detached.
	ReadOnly bool
	// Detached (with ReadOnly) copies the files instead of linking them and
	// lets go of the directory before Open returns, so the handle may stay
	// open while writers come and go (serve). It costs the repository's
	// size in disk space and copy time, less what Reuse already holds.
	Detached bool
	// Reuse (with Detached) is an earlier, still open detached handle of
	// the same directory: its copies of tables and value logs that have not
	// changed since are linked instead of copied again.
	Reuse *Repo
	// LockWait is how long Open waits for the directory's lock: a reader
	// for a writer to close the directory, a writer for readers to finish
	// (a writer never waits for another writer: it fails at once with
	// ErrLocked). Zero: a reader does not wait, a writer waits up to
	// DefaultReaderWait.
	LockWait time.Duration
	// InMemory keeps everything in memory (tests); the path is ignored.
	InMemory bool
	// Logger receives Badger's warnings and errors; nil discards them.
	Logger badger.Logger
	// Bulk (writers) says the handle is for one bulk load that ends with
	// Close, such as a command's full pull or import: when the directory
	// holds no table yet, compaction waits for Close, which merges what was
	// written into one level when it is more than a few tables (see
	// bulkOptions), so Close takes longer. It is
	// ignored when the directory has tables, where merging at Close would
	// rewrite the tables a few new objects overlap (an incremental pull), and
	// is no use to a long-lived writer (a daemon), whose reads would search
	// the tables it lets pile up. There the handle is still one command's
	// (an incremental pull): it opens with incrementalOptions.
	Bulk bool

	// merge (internal) opens the directory only to merge level 0 at Close
	// (Repo.mergeLevelZero).
	merge bool
}

// Repo is an open zonegit repository.
type Repo struct {
	db       *badger.DB
	path     string
	readOnly bool
	snap     *snapshot // read-only: the private directory Badger has open
	lock     *dirLock  // a reader's shared lock on path, held until Close
	closeMu  sync.Once
	flushes  *flushWatch // writers: sees Badger's memtable flushes fail (Close)
	bulk     bool        // a bulk load (Options.Bulk): Close may rewrite every table
	merge    bool        // Close merges level 0 (CompactL0OnClose), with the marker
	second   bool        // mergeLevelZero's own handle: its Close does not look again
	logger   badger.Logger

	// unchecked counts bytes handed to Badger since the last free-space
	// check (writers).
	unchecked atomic.Int64

	keysOnce sync.Once // tableKeys
	keys     float64
}

// Key families of the Badger layout (FORMAT.md).
const (
	objPrefix    = "o/"
	refPrefix    = "r/"
	reflogPrefix = "l/"
)

// Free space a writer keeps on the repository's filesystem. Badger writes
// through shared memory maps of files it sized with ftruncate (sparse), so
// a full filesystem is not an ENOSPC error but SIGBUS in one of its
// goroutines, which kills the process. Writers therefore stop, with an
// error, while this much is still free: room for what Badger may write
// beyond what we handed it so far (two memtables' write-ahead logs, the
// tables they flush to, one compaction's output).
const (
	minFreeSpace    = 64 << 20
	spaceCheckEvery = 1 << 20 // bytes between two checks during bulk writes
)

// Open opens the repository at path: read-only (a private snapshot, see
// Options.ReadOnly), or writable, creating it if absent. A second writer
// fails at once with ErrLocked; a damaged repository is ErrDamaged (a
// *DamageError naming the damage); a full filesystem is a *NoSpaceError.
// Open never panics on damaged files.
func Open(path string, opts Options) (*Repo, error) {
	if opts.InMemory {
		bo := baseOptions(badger.DefaultOptions("").WithInMemory(true), opts)
		var db *badger.DB
		if err := caught(func() (err error) { db, err = badger.Open(bo); return err }); err != nil {
			return nil, fmt.Errorf("open in-memory repository: %w", err)
		}
		return &Repo{db: db}, nil
	}
	if opts.ReadOnly {
		return openReadOnly(path, opts)
	}
	return openWriter(path, opts)
}

// baseOptions are the Badger options every open uses.
func baseOptions(bo badger.Options, opts Options) badger.Options {
	return bo.WithLogger(opts.Logger).
		// Smaller memtables and caches than Badger's defaults keep a provider
		// or a 1M-object pull within a modest RSS (DESIGN §9: 256 MiB); they
		// do not change the on-disk format, which readers open with defaults.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(256 << 20)
}

// openWriter opens the directory itself for writing. Before Badger sees
// it, under the exclusive lock, checkFiles looks for damage that Badger
// would "repair" by deleting tables or answer with a panic, and the
// filesystem must have minFreeSpace.
func openWriter(path string, opts Options) (*Repo, error) {
	wait := opts.LockWait
	if wait <= 0 {
		wait = DefaultReaderWait
	}
	deadline := time.Now().Add(wait)
	flushes := newFlushWatch(opts.Logger)
	bo := writerOptions(baseOptions(badger.DefaultOptions(path), opts)).WithLogger(flushes)
	for {
		err := prepareWriter(path)
		if errors.Is(err, errReadersActive) {
			if !time.Now().Before(deadline) {
				return nil, fmt.Errorf("open repository %s: %w: it has been read for over %s (fsck, or a snapshot for serve "+
					"or a plan); try again when that is done", path, ErrLocked, wait)
			}
			time.Sleep(lockPoll)
			continue
		}
		if err != nil {
			return nil, err
		}
		bo := bo
		bulk := opts.Bulk && !hasTables(path)
		merge := opts.merge
		switch {
		case opts.merge:
			bo = bulkOptions(bo).WithCompactL0OnClose(true)
		case bulk:
			bo = bulkOptions(bo)
		case opts.Bulk:
			bo = incrementalOptions(bo)
			// The table this command's Close flushes would make one more
			// than maxLevelZeroPiled: merge level 0 in this Close rather
			// than in a second handle opened after it (mergeLevelZero),
			// which costs an open and a close of its own.
			if n, err := levelZeroTables(path); err == nil && n >= maxLevelZeroPiled {
				merge = true
				bo = bo.WithCompactL0OnClose(true)
			}
		}
		var db *badger.DB
		err = caught(func() (err error) { db, err = badger.Open(bo); return err })
		if err != nil && isBadgerLockError(err) && time.Now().Before(deadline) {
			// Someone took the lock between our check and Badger's: look
			// again who it is.
			time.Sleep(lockPoll)
			continue
		}
		if err != nil {
			return nil, openError(path, err)
		}
		// Badger has deleted the tables a killed bulk Close left unlisted:
		// the marker that explained them has done its work.
		if err := os.Remove(filepath.Join(path, bulkCloseName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = caught(db.Close) // the error below is the one to report
			return nil, fmt.Errorf("open repository %s: remove %s: %w", path, bulkCloseName, err)
		}
		return &Repo{db: db, path: path, flushes: flushes, bulk: bulk, merge: merge, second: opts.merge, logger: opts.Logger}, nil
	}
}

// prepareWriter checks, under the directory's exclusive lock, that a
// writer may open it: no other writer (ErrLocked), no reader
// (errReadersActive), no damage, enough free space.
func prepareWriter(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Badger creates it; the space counts where it will be.
		return checkFree(path, existingAncestor(path), minFreeSpace)
	}
	if err != nil {
		return fmt.Errorf("open repository %s: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("open repository %s: not a directory", path)
	}
	l, err := tryLockDir(path, true)
	if errors.Is(err, errLockBusy) {
		if !sharedLocksSeparate {
			return errReadersActive
		}
		if rl, err := tryLockDir(path, false); err == nil {
			_ = rl.unlock() // a probe: closing the descriptor drops it
			return errReadersActive
		}
		return fmt.Errorf("open repository %s: %w (%s holds it for writing; only one writer at a time: wait for it to finish)",
			path, ErrLocked, writerName(path))
	}
	if err != nil {
		return fmt.Errorf("open repository %s: lock: %w", path, err)
	}
	// Closing the descriptor drops the lock whatever close reports.
	defer func() { _ = l.unlock() }()
	if err := checkFiles(path, path); err != nil {
		return err
	}
	if err := dropEmptyLogs(path, path); err != nil {
		return err
	}
	return checkFree(path, path, minFreeSpace)
}

// dropEmptyLogs removes the empty write-ahead logs (.mem) in dir (the
// repository, or a private copy of it; errors name repoPath). Badger
// creates a log and then sizes it: a writer killed in between leaves a
// file of no bytes, which holds no entry, and on which Badger's next open
// fails ("while opening fid: N err: Create a new file") until it is gone.
// The caller holds the directory's exclusive lock (or the copy is its
// own), so no live writer is between those two steps.
func dropEmptyLogs(repoPath, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open repository %s: %w", repoPath, err)
	}
	for _, e := range ents {
		if ext, ok := numberedFile(e.Name()); !ok || ext != ".mem" {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open repository %s: %w", repoPath, err)
		}
		if fi.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open repository %s: remove the empty write-ahead log %s a killed writer left: %w", repoPath, e.Name(), err)
		}
	}
	return nil
}

// openReadOnly opens a private snapshot of path (Options.ReadOnly).
func openReadOnly(path string, opts Options) (*Repo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open repository %s: not a directory", path)
	}
	lock, err := lockShared(path, opts.LockWait)
	if err != nil {
		return nil, err
	}
	var reuse *snapshot
	if opts.Detached && opts.Reuse != nil {
		reuse = opts.Reuse.snap
	}
	snap, err := takeSnapshot(path, !opts.Detached, reuse)
	if err == nil && opts.Detached {
		err = lock.unlock()
		lock = nil
	}
	var db *badger.DB
	if err == nil {
		db, err = openSnapshot(path, snap, opts)
		err = renamed(err, snap.dir, path)
	}
	if err != nil {
		// The open's error is the one to report; these only tidy up.
		_ = snap.remove()
		_ = lock.unlock()
		if errors.Is(err, errNoRepository) {
			err = fmt.Errorf("%w (%w)", err, ErrNotFound)
		}
		return nil, err
	}
	return &Repo{db: db, path: path, readOnly: true, snap: snap, lock: lock}, nil
}

// openSnapshot checks the snapshot for damage, recovers it if a writer
// crashed (a writable open of the private copy replays and truncates the
// write-ahead log, as the next writer would do to the source), and opens
// it read-only with block checksums verified on read.
func openSnapshot(path string, snap *snapshot, opts Options) (*badger.DB, error) {
	if err := checkFiles(path, snap.dir); err != nil {
		return nil, err
	}
	if snap.recover {
		// A full copy of its own (takeSnapshot): the source is untouched.
		if err := dropEmptyLogs(path, snap.dir); err != nil {
			return nil, err
		}
	}
	base := baseOptions(badger.DefaultOptions(snap.dir), opts).WithBypassLockGuard(true)
	if snap.recover {
		if err := checkFree(path, snap.dir, minFreeSpace); err != nil {
			return nil, err
		}
		err := caught(func() error {
			db, err := badger.Open(writerOptions(base))
			if err != nil {
				return err
			}
			return db.Close()
		})
		if err != nil {
			return nil, openError(path, fmt.Errorf("recover a private copy of the log a crashed writer left: %w", err))
		}
	}
	var db *badger.DB
	err := caught(func() (err error) {
		db, err = badger.Open(readerOptions(base, compressedTables(snap.dir)))
		return err
	})
	if err != nil {
		return nil, openError(path, err)
	}
	return db, nil
}

// readerOptions are a read-only snapshot's: block checksums verified on
// read, no metrics, and a block cache only for compressed tables.
//
// A block of a table written without compression (writerOptions) is read
// in place from the mapped file; the cache saves only its checksum, and
// costs more than that: serve reads every object of a full pull through
// one handle (200,000 of them for a 100k-record flat zone), blocks pass
// through Badger's ristretto cache on every read (a cache key allocation,
// sharded map lookups, admission bookkeeping in a goroutine of its own),
// and a primary's blocks are read in sweeps that do not fit 16 MiB, so
// they mostly miss. Measured on full packs, serve CPU per pull: 100k
// records 0.64 -> 0.48 s, 1M records 10.4 -> 8.1 s; a 256 MiB cache did
// not help (10.5 s). A compressed block must be decoded into memory of
// its own, so tables written compressed keep the cache (Badger also
// requires one as soon as the options name a compression).
// Badger's metrics are process-wide expvar counters, updated on every
// lookup (a map lookup and an atomic add per level), that nothing reads.
func readerOptions(bo badger.Options, compressed bool) badger.Options {
	bo = bo.WithReadOnly(true).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithMetricsEnabled(false)
	if !compressed {
		// Compression is read per table from the MANIFEST: this only
		// says the handle needs no cache for it.
		bo = bo.WithCompression(options.None).WithBlockCacheSize(0)
	}
	return bo
}

// compressedTables reports whether the MANIFEST in dir lists a compressed
// table (or cannot be read: then the reader keeps its cache).
func compressedTables(dir string) bool {
	mf, err := readManifest(filepath.Join(dir, manifestName))
	if err != nil {
		return true
	}
	for _, t := range mf.Tables {
		if t.Compression != options.None {
			return true
		}
	}
	return false
}

// renamed replaces the private snapshot's path by the repository's in a
// damage report, which should name files the user can find.
func renamed(err error, from, to string) error {
	var de *DamageError
	if errors.As(err, &de) {
		de.Detail = strings.ReplaceAll(de.Detail, from, to)
	}
	return err
}

// isBadgerLockError reports whether badger.Open failed on the directory
// lock (its error text is all there is: Badger wraps with %+v).
func isBadgerLockError(err error) bool {
	return strings.Contains(err.Error(), "Another process is using this Badger database")
}

// openError turns a failed badger.Open into an error naming the
// repository and the cause: locked, full, unreadable or damaged.
func openError(path string, err error) error {
	var de *DamageError
	var ns *NoSpaceError
	var pe *panicError
	switch {
	case errors.As(err, &de), errors.As(err, &ns):
		return err
	case isBadgerLockError(err):
		return fmt.Errorf("open repository %s: %w (%s holds it for writing; only one writer at a time: wait for it to finish)",
			path, ErrLocked, writerName(path))
	case strings.Contains(err.Error(), "no space left on device"):
		free, _ := freeSpace(path)
		return &NoSpaceError{Path: path, Free: free, Cause: err}
	case errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "permission denied"):
		return fmt.Errorf("open repository %s: %w", path, err)
	case errors.As(err, &pe) && pe.fault:
		return faultError(path, err)
	}
	return &DamageError{Path: path, What: "its files", Detail: "Badger cannot open them: " + err.Error()}
}

// faultError explains a memory fault on a mapped file: the filesystem
// could not back a page (full), or the file is damaged.
func faultError(path string, err error) error {
	if free, ferr := freeSpace(path); ferr == nil && free >= 0 && free < minFreeSpace {
		return &NoSpaceError{Path: path, Free: free, Need: minFreeSpace, Cause: err}
	}
	return &DamageError{Path: path, What: "a mapped file", Detail: err.Error()}
}

// statFree is freeSpace; tests that cannot fill a filesystem replace it.
var statFree = freeSpace

// checkFree fails with a *NoSpaceError naming repoPath when the filesystem
// holding dir has less than need bytes available.
func checkFree(repoPath, dir string, need int64) error {
	free, err := statFree(dir)
	if err != nil {
		return fmt.Errorf("repository %s: check free space: %w", repoPath, err)
	}
	if free >= 0 && free < need {
		return &NoSpaceError{Path: repoPath, Free: free, Need: need}
	}
	return nil
}

// existingAncestor returns the nearest directory at or above path that
// exists.
func existingAncestor(path string) string {
	p := filepath.Clean(path)
	for {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}

// reserve accounts n bytes about to be handed to Badger and, every
// spaceCheckEvery bytes (or always with force), checks that the filesystem
// still has minFreeSpace (a bulk load: plus the size of its tables).
func (r *Repo) reserve(n int, force bool) error {
	if r.path == "" {
		return nil
	}
	if r.unchecked.Add(int64(n)) < spaceCheckEvery && !force {
		return nil
	}
	r.unchecked.Store(0)
	need := int64(minFreeSpace)
	if r.bulk {
		// Close merges every table of the load into new ones before it
		// deletes the old (bulkOptions), in goroutines of Badger's where a
		// full filesystem is SIGBUS: keep room for a copy of them.
		for _, l := range r.db.Levels() {
			need += l.Size
		}
	}
	return checkFree(r.path, r.path, need)
}

// read runs fn (Badger reads, no caller code) with Badger's panics and
// memory faults turned into an error naming the repository.
func (r *Repo) read(fn func() error) error {
	err := caught(fn)
	if err == nil {
		// Before pe: its address escapes (errors.As), which would make
		// every read allocate it.
		return nil
	}
	var pe *panicError
	if errors.As(err, &pe) {
		return r.readFailure(pe)
	}
	return err
}

// readFailure explains a panic or fault while reading.
func (r *Repo) readFailure(pe *panicError) error {
	if pe.fault {
		return faultError(r.path, pe)
	}
	return &DamageError{Path: r.path, What: "its files", Detail: "reading them failed: " + pe.Error()}
}

// view runs fn in a read transaction, guarded by read. fn must not run
// caller code (View and ForEachObject handle that).
func (r *Repo) view(fn func(txn *badger.Txn) error) error {
	return r.read(func() error { return r.db.View(fn) })
}

// writerOptions tunes a writable on-disk open for the memory of bulk writes
// (a full pull or import of a 1M-RRset zone, 2M objects). Measured with
// tools/measure-pull-rss.sh (1M flat zone, pack pull from a loopback
// primary; 2 cores shared with other jobs at load 4-6, so seconds are
// noisy), client peak from /proc/<pid>/status:
//
//	options                                 max RSS    RssAnon  RssFile  seconds
//	before: Snappy, 16 MiB memtables, 4 comp 436-454    234-241  215-221  30-40
//	Snappy, 8 MiB mt, 2 compactors           407-410    203-209  209-220  45-48
//	  + 4 MiB block and index caches (chosen) 380-401   192-203  211-220  29-46
//	None, 2 compactors (8 or 16 MiB mt)      423-434    180-188  258-276  33-45
//	ZSTD-1, 16 MiB mt, 2 compactors          425-433    235-243  212-213  30-49
//	ZSTD-1, 8 MiB mt, 2 comp, 4 MiB caches   363-397    179-195  197-208  38-50
//	  ... but a primary written with ZSTD serves ~40% slower (63 s vs 44-46 s
//	  for the same client), and every reader pays that.
//	+ 1 MiB base tables, 3/10 L0 tables      407-416    213-218  198-215  43-46
//	+ ValueThreshold 48 (payloads in vlog)   385-397    188-195  212-213  38-44
//	MemTableSize 4 MiB: refused by Badger (its batch limit falls below the
//	default 1 MiB ValueThreshold).
//
// Most private memory Badger adds is table-building buffers: an L0 table
// is built from a whole memtable, and with compression every block is held
// twice (raw and compressed) in allocators that Badger pools, so smaller
// memtables and fewer concurrent compactions shrink them. Without
// compression the buffers shrink but the tables grow, and file-backed pages
// rise more than private memory falls.
//
// The file-backed part cannot be tuned away: Badger writes every table and
// value log through a shared mmap (table.CreateTable, z.OpenMmapFile) and
// keeps it mapped while the table lives, so a full pull's RssFile is about
// the size of the database (at the peak, from smaps: ~135-150 MiB of .sst,
// 39 MiB of .vlog holding the 40 MB apex tree, up to 8 MiB of memtable WAL,
// 14 MiB of binary). Those pages are clean (msynced) and reclaimable under
// memory pressure, but they count in RSS.
//
// A 1M-RRset import with these options: 906 MiB max RSS, 10 s (before:
// 1069 MiB, 9 s); most of it is the importer's own memory, not Badger's.
//
// Tables are not compressed (None, chosen over Snappy above): reading an
// object from a compressed table decodes its whole 4 KiB block into a new
// buffer, and none of Badger's caches holds a replica, so the closure check
// of a pull (which reads every new object back) decoded about one block per
// object. Measured on a 100k-record full pull (CLI against serve; client
// instructions by callgrind, other figures interleaved on a loaded machine):
//
//	                      client instr.  allocated   1M pull: RssAnon  RssFile  RSS
//	Snappy                12.8 G         2.08 GB     419 MiB           222      611
//	None                  10.3 G (-19%)  0.90 GB     306 MiB           357      689
//
// An uncompressed block is read in place from the mapped table. The costs:
// tables ~20% larger on disk and in file-backed pages, and a primary
// written this way took ~15% more CPU to serve a full pull (task-clock,
// 1.78 -> 2.05 s; the serving code is the same), so the CLI pull as a whole
// (client and serve on one machine) is about even; the gain is the
// client's CPU and private memory.
//
// None of this changes what a reader needs: compression is recorded per
// table in the MANIFEST and memtable, cache and compaction settings are not
// persisted, so a zonegit daemon opening with badger.DefaultOptions reads
// it (TestWriterOptionsReadableWithDefaults).
//
// A writer has no block or index cache and no metrics. The index cache is
// only used for encrypted tables (Table.fetchIndex); the block cache, for
// uncompressed tables read in place from the map, saves only the parse of a
// block's footer and costs a ristretto Get, Set and policy update per block
// read. Badger's metrics are expvar map updates on every lookup (two per
// table whose bloom filter is checked) and write, and nothing here reads
// them. 285k random point reads of a 2M-object replica (one level, 121
// tables): 1.91-1.92 s CPU with the 4 MiB caches, 1.23-1.24 s without; in
// a 1M pull whose closure check read every object back, metrics took 7.8%
// of the client's CPU and the block cache ~8%. A writer opening a replica
// written with compression (before None) decodes such a block on every
// read until compaction rewrites the table: correct, only slower.
func writerOptions(bo badger.Options) badger.Options {
	return bo.WithCompression(options.None).
		WithMemTableSize(8 << 20).
		WithNumCompactors(2).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithMetricsEnabled(false)
}

// bulkOptions are writerOptions for a bulk load into a repository without
// tables (Options.Bulk): compaction waits for Close, which merges level 0
// into one level at once.
//
// Object keys are hashes, random in key space, so every table flushed from
// a memtable overlaps every table below it: each compaction out of level 0
// rewrites the whole base level, and the levels below it in turn. With the
// writer options a 1M-record full pull (2,000,004 objects, 26 memtable
// flushes of ~9 MB) ran 288 compactions that rewrote 10.3M keys, 5.1 times
// what was written, on the second core that serve and the receive path
// need. With level 0 allowed bulkLevelZeroTables tables no compaction runs
// during the pull; Close (CompactL0OnClose) then merges the 26 tables into
// level 6 in one compaction of 2.0M keys (one pass, ~1.2 s CPU, 1.8-2.8 s
// wall on the shared machine). Writes alone (2M random 32-byte keys,
// 40-100 byte values, flush and sync every 64Ki objects, CPU seconds):
//
//	                                   write    close   compacted keys  live heap
//	writer options (5/15 L0 tables)    10.4-13  0.04    11.0-11.9M      185-195 MiB
//	bulk, 64/128 L0 tables, compact at 5.1-6.3  1.7-2.8  2.0M            103-111 MiB
//	  close
//	bulk, 20/40 L0 tables              8.7      0.05    1.3M (+10 L0 tables left)
//	bulk with 16 MiB memtables         6.7      2.5     2.0M            145 MiB
//	bulk with 32 MiB memtables         7.7      1.8     2.0M            223 MiB
//
// In the CLI pull of 1M records (interleaved runs, client CPU), with a
// closure check that trusts receipts instead of reading every object back:
// 17.5-18.3 s instead of 23.9-24.9 s, peak private memory 368-370 MiB
// instead of 404-412, RSS 602-610 MiB instead of 671-678; Badger's share
// of the peak heap is the memtable arena and a flush builder (~25 MB),
// without the ~60 MB of compaction table builders. The 100k pull: 1.65-1.78
// s instead of 1.78-1.91 s (with the caches and metrics of writerOptions).
// A CLI import of 1M records into a new repository: 9.9-10.2 s CPU instead
// of 11.6-11.8 s, max RSS 583-610 MiB instead of 707-730 MiB.
//
// The price is reads during the load: a lookup checks the bloom filter of
// every level-0 table (~50 ns each) and searches the 1% that pass falsely.
// A closure check that read all 2M objects back from 26-30 level-0 tables
// took twice the CPU (21.9 s instead of 10.4 s), which ate most of the gain
// (client 27.4-29.6 s instead of 29.3-30.6 s): this pays while the load
// reads little of what it writes. Past bulkLevelZeroTables tables
// (a load of more than ~2M records) compaction starts as usual. A killed
// load leaves its level-0 tables, and the next writer (which has tables, so
// it is not bulk) compacts them in the background; writes stall only when
// a memtable flush finds NumLevelZeroTablesStall (15) tables there.
//
// Badger's StreamWriter, which writes tables straight into the last level
// (no memtable, log or compaction), was measured as the alternative for a
// first pull. It needs the keys in sorted order, and the objects arrive in
// hash-random order: sorting 2M objects in memory took 2.3 s CPU and held
// ~800 MiB live (an external sort would spill and re-read the ~230 MB),
// then its writes took 3.7 s CPU (a protobuf round trip per key; 64 MiB
// tables, whose builders allocate twice that). Against ~6 s of writes and
// ~1.2 s of compaction here it saves little, breaks the memory budget, and
// nothing would be readable (closure check, later rounds) until its Flush.
//
// None of this changes the format: a reader sees one level of tables
// (TestBulkLoadCompactsOnClose), or at most maxLevelZeroKept level-0
// tables, as after any writer (TestBulkLoadSmallSkipsMerge).
//
// The merge runs only when the load left more than maxLevelZeroKept
// level-0 tables (mergeLevelZero): Badger's CompactL0OnClose, the one
// public way to merge level 0 into one level (Flatten takes a store whose
// tables are all in level 0 as flat already), is an option of the open,
// and a load does not know its size when it opens. So the load's handle
// closes without it, and a second handle, opened only when the MANIFEST
// shows more, closes with it. A 100k-record pull (3 tables) skips the
// merge: its Close took 0.37-0.67 s and now 0.05-0.19 s (load 7, pullprof);
// the second open costs a 1M pull some tens of ms.
func bulkOptions(bo badger.Options) badger.Options {
	return bo.WithNumLevelZeroTables(bulkLevelZeroTables).
		WithNumLevelZeroTablesStall(2 * bulkLevelZeroTables)
}

// incrementalOptions are writerOptions for one command's handle on a
// directory that already has tables (Options.Bulk, not a bulk load): an
// incremental pull, which writes a few objects and closes.
//
// A pull that writes more than a few memtables leaves a level-0 table
// for each; compaction of level 0 starts only past maxLevelZeroPiled + 2
// tables, so that Badger's compactors (which start at a random moment in
// the first second of a handle) do not begin a merge that this short
// handle's Close would then have to wait for: Close merges level 0
// itself once more than maxLevelZeroPiled tables have piled up. Writes
// stall at 32 tables, where compaction has long begun.
//
// The memtables stay at the writer options' 8 MiB, though Badger creates
// what a handle may write into up front, at every open (the memtable's
// arena on the Go heap and a write-ahead log file of twice its size whose
// first write faults in zero pages). 2 MiB memtables made one changed
// record in the 100k flat zone faster (CLI end to end, 30 interleaved
// pulls: 65 ms median instead of 75 at load 1-2; 276 instead of 335 ms
// at load 7), but Badger requires the value threshold to fit in 15% of a
// memtable, so values from 256 KiB up (a tree of 6,500 names or more)
// would go to the value log instead of the tables. Each handle starts a
// value log file of its own, and objects are never garbage: every pull
// that changed such a tree would leave one more value log file for good,
// which every later open maps and every Close syncs (300 pulls of a 30k
// flat zone, whose apex is over 1 MiB, left 302; a pull with nothing to do
// then took ~65 ms instead of ~20), where the tables it would have been
// written to are merged. Values of 1 MiB or more (Badger's largest
// threshold) go there anyway.
func incrementalOptions(bo badger.Options) badger.Options {
	return bo.WithNumLevelZeroTables(maxLevelZeroPiled + 2).
		WithNumLevelZeroTablesStall(32)
}

// maxLevelZeroKept is how many level-0 tables a bulk load may leave
// unmerged: a writer with Badger's default options (NumLevelZeroTables 5)
// leaves as many before it compacts, so a reader meets no more than it
// would after any writer.
const maxLevelZeroKept = 4

// maxLevelZeroPiled is how many level-0 tables any other writer's Close
// leaves unmerged. A command that writes a little (an incremental pull)
// flushes one small table at Close, and Badger's compactors, which start
// 0-1 s after the open, never run in a process that short: level 0 grew
// by a table a pull (26 tables and 27 value logs after ~40 CLI pulls, and
// a pull with nothing new took 90-100 ms instead of 60), and every read
// checks every level-0 table. Merging them rewrites what they overlap
// (with hash keys, the whole base level), so it waits until a few have
// piled up: one pull in about nine pays it. A command's handle that opens
// on maxLevelZeroPiled of them merges in its own Close (openWriter);
// mergeLevelZero's second handle, an open and a close more (~25-60 ms on
// the shared machine), is left for writers that end with more than that.
//
// The merge is cheap once the base level is not the last one: with the
// 100k flat zone (19 MB of tables in level 6 after the first merge) the
// base level is 5 and holds only what earlier merges put there, a few
// hundred KB. The first merge after a bulk load that left its tables in
// level 0 (maxLevelZeroKept) rewrites them all, once: 0.2-0.4 s at 100k.
const maxLevelZeroPiled = 2 * maxLevelZeroKept

// levelZeroTables counts the level-0 tables the MANIFEST in path lists.
func levelZeroTables(path string) (int, error) {
	mf, err := readManifest(filepath.Join(path, manifestName))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range mf.Tables {
		if t.Level == 0 {
			n++
		}
	}
	return n, nil
}

// mergeLockWait is how long the merge after a bulk load waits for readers
// that took the directory between the load's Close and the merge's open.
const mergeLockWait = 2 * time.Second

// mergeLevelZero merges the level-0 tables a writer left in path into
// one level, when there are more than keep: it opens the
// directory again as a writer whose Close merges level 0 (Options.merge,
// CompactL0OnClose, with the marker markBulkClose keeps).
//
// Between the load's Close and this open the directory is free, and
// another writer or a reader may take it. The load is complete and
// durable then, so the merge is skipped (nil): another writer compacts
// level 0 itself (Badger's defaults start at 5 tables), and a reader
// reads the tables as they are.
func mergeLevelZero(path string, logger badger.Logger, keep int) error {
	n, err := levelZeroTables(path)
	if err != nil {
		return &DamageError{Path: path, What: manifestName, Detail: err.Error()}
	}
	if n <= keep {
		return nil
	}
	m, err := openWriter(path, Options{LockWait: mergeLockWait, Logger: logger, merge: true})
	if errors.Is(err, ErrLocked) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("merge the bulk load's %d level-0 tables: %w", n, err)
	}
	return m.Close()
}

// bulkLevelZeroTables is how many level-0 tables (memtables of 8 MiB) a
// bulk load keeps before compaction starts: ~560 MB, a zone of ~2.4M
// records.
const bulkLevelZeroTables = 64

// markBulkClose creates the marker a Close keeps in dir while Badger
// merges level 0 (CompactL0OnClose: a bulk load's merge, or a command's
// handle that opened on maxLevelZeroPiled level-0 tables). Badger runs that merge after
// it has flushed the last memtable and deleted its write-ahead log, and
// writes the merged tables before the MANIFEST lists them: a writer
// killed there leaves tables the MANIFEST does not list and no log, which
// checkFiles would otherwise take for a MANIFEST that lost records. They
// are harmless (the listed tables still hold everything; Badger deletes
// them at the next open, and the next writer removes the marker). The
// marker is synced before the merge can write a table.
func markBulkClose(dir string) error {
	f, err := os.Create(filepath.Join(dir, bulkCloseName))
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return SyncDir(dir)
}

// hasTables reports whether dir holds a table file (or cannot be read:
// then the bulk settings are not worth the doubt).
func hasTables(dir string) bool {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	for _, e := range ents {
		if ext, ok := numberedFile(e.Name()); ok && ext == ".sst" {
			return true
		}
	}
	return false
}

// BulkLoad reports whether the handle is a bulk load: Options.Bulk on a
// directory that held no table yet (a first pull or import).
func (r *Repo) BulkLoad() bool { return r.bulk }

// Path is the directory the repository lives in ("" in memory).
func (r *Repo) Path() string { return r.path }

// ReadOnly reports whether the handle was opened read-only.
func (r *Repo) ReadOnly() bool { return r.readOnly }

// Close releases the repository: a read-only handle also deletes its
// private snapshot and lets go of the directory. It is safe to call more
// than once.
func (r *Repo) Close() error {
	var err error
	r.closeMu.Do(func() {
		var marked error
		if r.merge {
			marked = markBulkClose(r.path)
		}
		if r.flushes != nil {
			err = r.flushes.closeDB(r.path, func() error { return r.read(r.db.Close) })
		} else {
			err = r.read(r.db.Close)
		}
		if r.merge && marked == nil && err == nil {
			marked = os.Remove(filepath.Join(r.path, bulkCloseName))
		}
		if r.path != "" && !r.readOnly && !r.second && err == nil && marked == nil {
			keep := maxLevelZeroPiled
			if r.bulk {
				keep = maxLevelZeroKept
			}
			err = mergeLevelZero(r.path, r.logger, keep)
		}
		if marked != nil && err == nil {
			err = fmt.Errorf("close repository %s: the bulk load's merge marker: %w", r.path, marked)
		}
		if rerr := r.snap.remove(); rerr != nil && err == nil {
			err = fmt.Errorf("remove the private snapshot of %s: %w", r.path, rerr)
		}
		if lerr := r.lock.unlock(); lerr != nil && err == nil {
			err = lerr
		}
	})
	return err
}

// Sync forces everything written so far to disk: Badger's Sync, and every
// write-ahead log it leaves out (syncLogs).
func (r *Repo) Sync() error {
	if r.readOnly {
		return nil
	}
	if err := r.read(r.db.Sync); err != nil {
		return err
	}
	return syncLogs(r.path)
}

func objKey(h Hash) []byte {
	k := make([]byte, 0, 34)
	k = append(k, objPrefix...)
	return append(k, h[:]...)
}

func encodeObjectValue(kind Kind, payload []byte) []byte {
	v := make([]byte, 0, len(kind)+1+len(payload))
	v = append(v, kind...)
	v = append(v, 0)
	return append(v, payload...)
}

func decodeObjectValue(h Hash, v []byte) (Kind, []byte, error) {
	i := 0
	for i < len(v) && i < 8 && v[i] != 0 {
		i++
	}
	if i >= len(v) || v[i] != 0 {
		return "", nil, fmt.Errorf("object %s: stored value has no kind prefix: %w", h, ErrCorrupt)
	}
	// The known kinds compared in place: a Kind made from v would
	// allocate a string per object read.
	for _, k := range kindCodes[1:] {
		if string(v[:i]) == string(k) {
			return k, v[i+1:], nil
		}
	}
	_, err := ParseKind(string(v[:i]))
	return "", nil, fmt.Errorf("object %s: %v: %w", h, err, ErrCorrupt)
}

func verify(h Hash, kind Kind, payload []byte) error {
	if _, err := ParseKind(string(kind)); err != nil {
		return err
	}
	if got := HashObject(kind, payload); got != h {
		return fmt.Errorf("object %s (%s, %d bytes) hashes to %s: %w", h, kind, len(payload), got, ErrHashMismatch)
	}
	return nil
}

// Put stores an object after verifying that (kind, payload) hashes to h.
func (r *Repo) Put(h Hash, kind Kind, payload []byte) error {
	if r.readOnly {
		return ErrReadOnly
	}
	if err := verify(h, kind, payload); err != nil {
		return err
	}
	if err := r.reserve(len(payload), true); err != nil {
		return err
	}
	return r.read(func() error {
		return r.db.Update(func(txn *badger.Txn) error {
			return txn.Set(objKey(h), encodeObjectValue(kind, payload))
		})
	})
}

// PutObject hashes and stores an object, returning its hash.
func (r *Repo) PutObject(kind Kind, payload []byte) (Hash, error) {
	h := HashObject(kind, payload)
	return h, r.Put(h, kind, payload)
}

// Reader reads objects; Repo and the view passed to View implement it.
type Reader interface {
	Get(h Hash) (Kind, []byte, error)
	Has(h Hash) (bool, error)
}

// Get returns an object's kind and payload, or ErrNotFound.
func (r *Repo) Get(h Hash) (kind Kind, payload []byte, err error) {
	err = r.view(func(txn *badger.Txn) error {
		kind, payload, err = txnView{r, txn, nil}.Get(h)
		return err
	})
	return kind, payload, err
}

// Peek calls fn with an object's kind and payload in place, in a read
// transaction of its own (see txnView.Peek: the payload is only valid while
// fn runs).
func (r *Repo) Peek(h Hash, fn func(kind Kind, payload []byte) error) error {
	return r.db.View(func(txn *badger.Txn) error { return txnView{r, txn, nil}.Peek(h, fn) })
}

// Has reports whether an object is stored.
func (r *Repo) Has(h Hash) (ok bool, err error) {
	err = r.view(func(txn *badger.Txn) error {
		ok, err = txnView{r, txn, nil}.Has(h)
		return err
	})
	return ok, err
}

// HasObjects reports whether any object is stored (one key looked at).
func (r *Repo) HasObjects() (ok bool, err error) {
	err = r.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(objPrefix)})
		defer it.Close()
		it.Rewind()
		ok = it.Valid()
		return nil
	})
	return ok, err
}

// View runs fn with a Reader over one consistent snapshot, which is much
// cheaper than one transaction per object for walks; reads in ascending
// hash order are cheaper still (see seqCursors). The Reader is for one
// goroutine at a time.
func (r *Repo) View(fn func(Reader) error) error {
	// fn is the caller's: its panics are its own. The reads it makes
	// through the Reader are guarded one by one.
	if !r.readOnly {
		// No cursors on a writer: an iterator holds every memtable and
		// table it was opened on until it is closed, so during a long
		// View (a pull's closure check) the memtables and compacted
		// tables the writer has since replaced stay in memory (a 1M
		// pull's client peaked 125 MiB higher).
		return r.db.View(func(txn *badger.Txn) error { return fn(txnView{r, txn, nil}) })
	}
	return r.db.View(func(txn *badger.Txn) error {
		seq := newSeqCursors(r, txn)
		defer seq.close()
		return fn(txnView{r, txn, seq})
	})
}

type txnView struct {
	r   *Repo
	txn *badger.Txn
	seq *seqCursors // nil: point lookups only
}

// item finds h's stored item (nil: absent); it runs under the read guard.
// An item from a cursor is valid only until the next read of this view.
func (v txnView) item(h Hash) (*badger.Item, error) {
	if v.seq != nil {
		return v.seq.find(h)
	}
	item, err := v.txn.Get(objKey(h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	return item, err
}

func (v txnView) Get(h Hash) (kind Kind, payload []byte, err error) {
	err = v.r.read(func() error {
		item, err := v.item(h)
		if err != nil {
			return err
		}
		if item == nil {
			return fmt.Errorf("object %s: %w", h, ErrNotFound)
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		kind, payload, err = decodeObjectValue(h, val)
		return err
	})
	return kind, payload, err
}

// Peek calls fn with an object's kind and its payload as the store holds
// it, without copying it out: the payload is only valid while fn runs and
// must not be modified or kept. fn runs under the read guard (a memory fault
// on the mapped file becomes a damage error), so it should only read.
func (v txnView) Peek(h Hash, fn func(kind Kind, payload []byte) error) error {
	var fnErr error
	err := v.r.read(func() error {
		item, err := v.item(h)
		if err != nil {
			return err
		}
		if item == nil {
			return fmt.Errorf("object %s: %w", h, ErrNotFound)
		}
		if v.seq != nil {
			// Reads fn makes must not move the cursor the payload
			// may come from: its buffer is the iterator's.
			v.seq.lending++
			defer func() { v.seq.lending-- }()
		}
		return item.Value(func(val []byte) error {
			kind, payload, err := decodeObjectValue(h, val)
			if err != nil {
				return err
			}
			fnErr = fn(kind, payload)
			return fnErr
		})
	})
	if fnErr != nil {
		return fnErr // as fn returned it, not wrapped by the guard
	}
	return err
}

// LentInPlace reports whether Peek lends an object's payload of n bytes
// straight from the store's mapped value log (kind and payload are one
// value there): Badger keeps values of its ValueThreshold (1 MiB, the
// default this package writes with) and more in the value log, and
// item.Value hands them out in place, while smaller ones live in the
// tables and are copied out on every read. Reading such a payload again
// costs a lookup, not a copy, so a cache of it saves nothing. (A store
// another writer filled with other options may keep large values in its
// tables, and an in-memory store has no value log: such payloads are
// copied, which is slower, not wrong.)
func LentInPlace(kind Kind, n int) bool { return len(kind)+1+n >= valueLogBytes }

// valueLogBytes is Badger's default ValueThreshold, which Open keeps.
const valueLogBytes = 1 << 20

// Peeker is a Reader that can lend payloads in place (txnView, inside
// View): walks that only look at an object once read it without a copy.
type Peeker interface {
	Reader
	Peek(h Hash, fn func(kind Kind, payload []byte) error) error
}

// Peek calls fn with h's kind and payload: in place when r is a Peeker
// (the payload is only valid while fn runs), else from a Get. A read error
// (ErrNotFound, damage) is returned without calling fn; fn's error is
// returned as is.
func Peek(r Reader, h Hash, fn func(kind Kind, payload []byte) error) error {
	if p, ok := r.(Peeker); ok {
		return p.Peek(h, fn)
	}
	kind, payload, err := r.Get(h)
	if err != nil {
		return err
	}
	return fn(kind, payload)
}

func (v txnView) Has(h Hash) (ok bool, err error) {
	err = v.r.read(func() error {
		item, err := v.item(h)
		ok = item != nil
		return err
	})
	return ok, err
}

// ForEachObject calls fn for every stored object in key order, stopping at
// the first error fn returns.
func (r *Repo) ForEachObject(fn func(h Hash, kind Kind, payload []byte) error) error {
	return r.db.View(func(txn *badger.Txn) error {
		// No value prefetching: it reads values in goroutines of Badger's,
		// where a damaged file would crash the process.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(objPrefix)})
		defer it.Close()
		valid := false
		step := func(first bool) error {
			return r.read(func() error {
				if first {
					it.Rewind()
				} else {
					it.Next()
				}
				valid = it.Valid()
				return nil
			})
		}
		for err := step(true); ; err = step(false) {
			if err != nil || !valid {
				return err
			}
			var h Hash
			var kind Kind
			var payload []byte
			err := r.read(func() error {
				item := it.Item()
				k := item.Key()
				if len(k) != 34 {
					return fmt.Errorf("object key %x has %d bytes, want 34: %w", clipBytes(k), len(k), ErrCorrupt)
				}
				copy(h[:], k[2:])
				val, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				kind, payload, err = decodeObjectValue(h, val)
				return err
			})
			if err != nil {
				return err
			}
			if err := fn(h, kind, payload); err != nil {
				return err
			}
		}
	})
}

// Batch is a bulk object writer. Every Put is verified. Nothing written
// through a Batch may be referenced until Flush returns nil: Flush waits
// for the writes and syncs them to disk.
//
// It hands objects to Badger in sorted groups through a KVLoader, the
// path Badger restores backups by, not in transactions: a Batch only
// adds immutable objects under their own hash, which no reader needs to
// see all at once, so it needs nothing a transaction gives, and what
// transactions cost was a third of a 100k-record pull's receiving
// goroutine. Badger's WriteBatch keeps each transaction's entries in a
// map (a string key allocated per object) and, as it starts the next
// transaction, waits until every commit before it is written
// (oracle.readTs), so the caller and Badger's write goroutine took turns;
// and its entries reach the memtable in the map's random order, so each
// skiplist insert searched the whole memtable from cold cache lines. A
// loader's entries reach the memtable in the order given, and are sent
// while the caller fills the next group. Sorted by key, consecutive
// inserts walk the same skiplist nodes.
//
// The entries take the version of the last commit before the batch
// started (see first for a store without one), so every read that starts
// after them sees them, as it would see a transaction's, and no later
// commit's version is below theirs. An object that is already stored is written
// again under a version at least as new, with the same value. The
// entries carry no transaction marks; a write-ahead log replays them one
// by one, which for objects is all a transaction's marks would ensure.
type Batch struct {
	r       *Repo
	ld      *badger.KVLoader // nil once flushed or canceled
	version uint64
	group   []batchEntry // sorted and handed to ld when full
	size    int          // what group holds, as Badger counts it
	big     int          // bytes of large values handed to ld
	kv      pb.KV        // reused: the loader copies the key, keeps the value
	// err is the first error a Put met: the loader reports a failed
	// background write once, to the call that meets it, so the Batch
	// keeps it for every later Put and for Flush.
	err     error
	key     [34]byte
	objects int
	bytes   int64
}

type batchEntry struct {
	h     Hash
	value []byte
}

// Bounds of one Batch: a group of objects is sorted and handed to Badger
// when it holds batchGroupBytes (about one of Badger's write requests,
// 15% of a memtable) or batchGroupObjects; Badger writes at most
// batchPending requests behind the one being filled; and since Badger
// counts a value of 1 MiB or more only as a pointer into the value log,
// the loader is drained once it was given batchBigBytes of those, so that
// large objects cannot pile up in its requests.
const (
	batchGroupBytes   = 1 << 20
	batchGroupObjects = 8192
	batchPending      = 3
	batchBigValue     = 1 << 20
	batchBigBytes     = 8 << 20
)

// NewBatch starts a bulk writer.
func (r *Repo) NewBatch() (*Batch, error) {
	if r.readOnly {
		return nil, ErrReadOnly
	}
	b := &Batch{r: r}
	err := r.read(func() error {
		txn := r.db.NewTransaction(false)
		b.version = txn.ReadTs()
		txn.Discard()
		b.ld = r.db.NewKVLoader(batchPending)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// add queues one object's value; it runs under the read guard.
func (b *Batch) add(h Hash, value []byte) error {
	if b.ld == nil {
		return errBatchDone
	}
	if b.version == 0 {
		return b.first(h, value)
	}
	b.group = append(b.group, batchEntry{h, value})
	// As Badger counts an entry: the key with its version, two bytes of
	// meta, and the value or a pointer to it.
	if len(value) < batchBigValue {
		b.size += len(b.key) + 8 + 2 + len(value)
	} else {
		b.size += len(b.key) + 8 + 2 + 12
	}
	if b.size < batchGroupBytes && len(b.group) < batchGroupObjects {
		return nil
	}
	return b.send()
}

// first stores the first object of a batch into a store that has never
// committed anything in a transaction of its own, whose version the
// others then take: Badger reads an entry of version 0 only while nothing
// newer was committed (DB.get keeps the newest version it met, starting
// from 0), so a loader's entries must be of version 1 or more, and
// visible at that version only once a commit made it.
func (b *Batch) first(h Hash, value []byte) error {
	if err := b.r.db.Update(func(txn *badger.Txn) error { return txn.Set(objKey(h), value) }); err != nil {
		return err
	}
	txn := b.r.db.NewTransaction(false)
	b.version = txn.ReadTs()
	txn.Discard()
	if b.version == 0 {
		return errors.New("the store's version did not advance after a commit")
	}
	return nil
}

// send hands the group to the loader in key order.
func (b *Batch) send() error {
	SortByHash(b.group, func(e *batchEntry) *Hash { return &e.h })
	copy(b.key[:], objPrefix)
	b.kv.Version = b.version
	for i := range b.group {
		e := &b.group[i]
		copy(b.key[len(objPrefix):], e.h[:])
		b.kv.Key, b.kv.Value = b.key[:], e.value
		if err := b.ld.Set(&b.kv); err != nil {
			return err
		}
		if len(e.value) >= batchBigValue {
			b.big += len(e.value)
		}
		e.value = nil
	}
	b.kv.Key, b.kv.Value = nil, nil
	b.group, b.size = b.group[:0], 0
	if b.big < batchBigBytes {
		return nil
	}
	// Drain the loader: it holds the large values until they are written.
	err := b.ld.Finish()
	b.ld, b.big = b.r.db.NewKVLoader(batchPending), 0
	return err
}

// errBatchDone is the error of a Batch used after Flush or Cancel.
var errBatchDone = errors.New("the batch was flushed or canceled")

// Put verifies and queues one object. The payload is copied.
func (b *Batch) Put(h Hash, kind Kind, payload []byte) error {
	o, err := Verify(h, kind, payload)
	if err != nil {
		return err
	}
	return b.PutVerified(o)
}

// Verified is an object whose payload was found to hash to its name,
// copied as the store keeps it. Only Verify makes one, so whatever a Batch
// stores through PutVerified was verified, wherever the hashing ran.
type Verified struct {
	h     Hash
	kind  Kind
	value []byte // encodeObjectValue(kind, payload)
}

// Verify checks that (kind, payload) hashes to h and copies the object
// for PutVerified. Hashing apart from storing lets a receiver hash the
// next objects on another goroutine while it stores this one.
func Verify(h Hash, kind Kind, payload []byte) (Verified, error) {
	if err := verify(h, kind, payload); err != nil {
		return Verified{}, err
	}
	return Verified{h: h, kind: kind, value: encodeObjectValue(kind, payload)}, nil
}

// ReadVerified reads the n-byte payload of object h, of kind kind, from r
// straight into the copy the store keeps, hashing each piece as it lands,
// and returns it as Verify would: a receiver so copies a large object once
// (a flat zone's apex tree is 4 MB per 100,000 names), not into a buffer
// and then into the store's copy, and hashes it while it arrives rather
// than in a pass after its last byte. A tree is checked as it arrives
// too: invalid is Validate's verdict on the payload (which a receiver
// needs before it may store the object), reached for a tree mostly while
// the bytes still came. A payload that does not hash to h is an error
// wrapping ErrHashMismatch; r's errors are returned as they are (an early
// end as io.ErrUnexpectedEOF).
func ReadVerified(h Hash, kind Kind, n int, r io.Reader) (o Verified, invalid, err error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return Verified{}, nil, err
	}
	if n < 0 {
		return Verified{}, nil, fmt.Errorf("object %s: negative length %d", h, n)
	}
	value := make([]byte, len(kind)+1+n)
	copy(value, kind) // then the 0 that ends the kind, as encodeObjectValue
	payload := value[len(kind)+1:]
	d := sha256.New()
	var hdr [32]byte
	d.Write(objectHeader(&hdr, kind, n))
	v := validator{kind: kind, p: payload}
	for off := 0; off < n; {
		end := min(n, off+readVerifiedPiece)
		if _, err := io.ReadFull(r, payload[off:end]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Verified{}, nil, err
		}
		d.Write(payload[off:end])
		v.advance(end)
		off = end
	}
	var got Hash
	if d.Sum(got[:0]); got != h {
		return Verified{}, nil, fmt.Errorf("object %s (%s, %d bytes) hashes to %s: %w", h, kind, n, got, ErrHashMismatch)
	}
	return Verified{h: h, kind: kind, value: value}, v.finish(), nil
}

// readVerifiedPiece is how much ReadVerified reads before it hashes: the
// piece is hashed while it is still in the cache.
const readVerifiedPiece = 256 << 10

// Hash is the object's name.
func (o Verified) Hash() Hash { return o.h }

// Kind is the object's kind.
func (o Verified) Kind() Kind { return o.kind }

// Payload is the object's payload (the copy; it must not be modified).
func (o Verified) Payload() []byte {
	if o.value == nil {
		return nil
	}
	return o.value[len(o.kind)+1:]
}

// PutVerified queues one object Verify checked.
func (b *Batch) PutVerified(o Verified) error {
	if o.value == nil {
		return fmt.Errorf("object %s: not verified (a zero repo.Verified)", o.h)
	}
	if b.err != nil {
		return b.err
	}
	n := len(o.Payload())
	if b.err = b.r.reserve(n, false); b.err != nil {
		return b.err
	}
	b.objects++
	b.bytes += int64(n)
	b.err = b.r.read(func() error { return b.add(o.h, o.value) })
	return b.err
}

// PutObject hashes, queues and returns the hash of one object. The object
// is named by its own hash, so it is verified by construction: it is
// hashed once, not once to name it and again to verify the name.
func (b *Batch) PutObject(kind Kind, payload []byte) (Hash, error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return ZeroHash, err
	}
	o := Verified{h: HashObject(kind, payload), kind: kind, value: encodeObjectValue(kind, payload)}
	return o.h, b.PutVerified(o)
}

// Count returns how many objects and payload bytes were queued.
func (b *Batch) Count() (objects int, bytes int64) { return b.objects, b.bytes }

// Flush writes everything queued and syncs it to disk. The Batch cannot be
// used afterwards.
func (b *Batch) Flush() error {
	if b.ld == nil {
		return errBatchDone
	}
	if b.err != nil {
		b.Cancel()
		return fmt.Errorf("write objects: %w", b.err)
	}
	if err := b.r.reserve(0, true); err != nil {
		b.Cancel()
		return err
	}
	err := b.r.read(func() error {
		err := b.send()
		if ferr := b.ld.Finish(); err == nil {
			err = ferr
		}
		return err
	})
	b.ld, b.group = nil, nil
	if err != nil {
		return fmt.Errorf("write objects: %w", err)
	}
	if err := b.r.Sync(); err != nil {
		return fmt.Errorf("sync objects: %w", err)
	}
	return nil
}

// syncLogs writes back every write-ahead log (.mem) in dir. Badger's Sync
// writes back only the active memtable's log and the value log; a
// memtable a batch filled and Badger replaced keeps the only copy of its
// entries in its log, unwritten, until Badger has flushed it to a table
// in the background, so a ref committed and synced after Flush could
// survive a power loss that its objects do not
// (TestBatchFlushSyncsEveryLog). A log that is gone by the time it is
// opened was flushed to a table, which Badger syncs.
func syncLogs(dir string) error {
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if ext, ok := numberedFile(e.Name()); !ok || ext != ".mem" {
			continue
		}
		// Writable: Windows flushes only a handle that may write.
		f, err := os.OpenFile(filepath.Join(dir, e.Name()), os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Cancel discards what is queued and not yet handed to Badger, and waits
// for what was. Objects written already stay (they are immutable and
// nothing names them).
func (b *Batch) Cancel() {
	if b.ld == nil {
		return
	}
	// The loader's error concerns objects nobody will use.
	_ = b.r.read(b.ld.Finish)
	b.ld, b.group = nil, nil
}
