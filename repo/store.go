package repo

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Options say how to open a repository. The zero value is a writable
// on-disk repository.
type Options struct {
	// ReadOnly opens without taking Badger's directory lock, as the zonegit
	// daemon does, so a writer in another process can keep working.
	ReadOnly bool
	// InMemory keeps everything in memory (tests); the path is ignored.
	InMemory bool
	// Logger receives Badger's warnings and errors; nil discards them.
	Logger badger.Logger
}

// Repo is an open zonegit repository.
type Repo struct {
	db       *badger.DB
	path     string
	readOnly bool
	closeMu  sync.Once
}

// Key families of the Badger layout (FORMAT.md).
const (
	objPrefix    = "o/"
	refPrefix    = "r/"
	reflogPrefix = "l/"
)

// Open opens (creating if writable and absent) the repository at path.
// A second writable open of a directory fails with ErrLocked.
func Open(path string, opts Options) (*Repo, error) {
	bo := badger.DefaultOptions(path)
	if opts.InMemory {
		bo = badger.DefaultOptions("").WithInMemory(true)
		path = ""
	}
	bo = bo.WithLogger(opts.Logger).
		// Smaller memtables and caches than Badger's defaults keep a provider
		// or a 1M-object pull within a modest RSS (DESIGN §9: 256 MiB); they
		// do not change the on-disk format, which readers open with defaults.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(256 << 20)
	if opts.ReadOnly && !opts.InMemory {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open repository %s: %w", path, err)
		}
		bo = bo.WithReadOnly(true).WithBypassLockGuard(true)
	} else if !opts.InMemory {
		bo = writerOptions(bo)
	}
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Another process is using this Badger database") {
			return nil, fmt.Errorf("open repository %s: %w (only one writer at a time; wait for it to finish)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	return &Repo{db: db, path: path, readOnly: opts.ReadOnly}, nil
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
//	  for the same client), and every reader pays that, so Snappy stays.
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
// None of this changes what a reader needs: compression is recorded per
// table in the MANIFEST and memtable, cache and compaction settings are not
// persisted, so a zonegit daemon opening with badger.DefaultOptions reads
// it (TestWriterOptionsReadableWithDefaults).
func writerOptions(bo badger.Options) badger.Options {
	return bo.WithCompression(options.Snappy).
		WithMemTableSize(8 << 20).
		WithNumCompactors(2).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(4 << 20)
}

// Path is the directory the repository lives in ("" in memory).
func (r *Repo) Path() string { return r.path }

// ReadOnly reports whether the handle was opened read-only.
func (r *Repo) ReadOnly() bool { return r.readOnly }

// Close releases the repository. It is safe to call more than once.
func (r *Repo) Close() error {
	var err error
	r.closeMu.Do(func() { err = r.db.Close() })
	return err
}

// Sync forces everything written so far to disk.
func (r *Repo) Sync() error {
	if r.readOnly {
		return nil
	}
	return r.db.Sync()
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
	k, err := ParseKind(string(v[:i]))
	if err != nil {
		return "", nil, fmt.Errorf("object %s: %v: %w", h, err, ErrCorrupt)
	}
	return k, v[i+1:], nil
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
	return r.db.Update(func(txn *badger.Txn) error {
		return txn.Set(objKey(h), encodeObjectValue(kind, payload))
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
	err = r.db.View(func(txn *badger.Txn) error {
		kind, payload, err = txnView{txn}.Get(h)
		return err
	})
	return kind, payload, err
}

// Has reports whether an object is stored.
func (r *Repo) Has(h Hash) (ok bool, err error) {
	err = r.db.View(func(txn *badger.Txn) error {
		ok, err = txnView{txn}.Has(h)
		return err
	})
	return ok, err
}

// View runs fn with a Reader over one consistent snapshot, which is much
// cheaper than one transaction per object for walks.
func (r *Repo) View(fn func(Reader) error) error {
	return r.db.View(func(txn *badger.Txn) error { return fn(txnView{txn}) })
}

type txnView struct{ txn *badger.Txn }

func (v txnView) Get(h Hash) (Kind, []byte, error) {
	item, err := v.txn.Get(objKey(h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", nil, fmt.Errorf("object %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return "", nil, err
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return "", nil, err
	}
	return decodeObjectValue(h, val)
}

func (v txnView) Has(h Hash) (bool, error) {
	_, err := v.txn.Get(objKey(h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ForEachObject calls fn for every stored object in key order, stopping at
// the first error fn returns.
func (r *Repo) ForEachObject(fn func(h Hash, kind Kind, payload []byte) error) error {
	return r.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte(objPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var h Hash
			k := item.Key()
			if len(k) != 34 {
				return fmt.Errorf("object key %x has %d bytes, want 34: %w", k, len(k), ErrCorrupt)
			}
			copy(h[:], k[2:])
			err := item.Value(func(val []byte) error {
				kind, payload, err := decodeObjectValue(h, val)
				if err != nil {
					return err
				}
				return fn(h, kind, payload)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Batch is a bulk object writer (Badger WriteBatch). Every Put is verified.
// Nothing written through a Batch may be referenced until Flush returns nil:
// Flush waits for the writes and syncs them to disk.
type Batch struct {
	r       *Repo
	wb      *badger.WriteBatch
	objects int
	bytes   int64
}

// NewBatch starts a bulk writer.
func (r *Repo) NewBatch() (*Batch, error) {
	if r.readOnly {
		return nil, ErrReadOnly
	}
	return &Batch{r: r, wb: r.db.NewWriteBatch()}, nil
}

// Put verifies and queues one object. The payload is copied.
func (b *Batch) Put(h Hash, kind Kind, payload []byte) error {
	if err := verify(h, kind, payload); err != nil {
		return err
	}
	b.objects++
	b.bytes += int64(len(payload))
	return b.wb.Set(objKey(h), encodeObjectValue(kind, payload))
}

// PutObject hashes, queues and returns the hash of one object.
func (b *Batch) PutObject(kind Kind, payload []byte) (Hash, error) {
	h := HashObject(kind, payload)
	return h, b.Put(h, kind, payload)
}

// Count returns how many objects and payload bytes were queued.
func (b *Batch) Count() (objects int, bytes int64) { return b.objects, b.bytes }

// Flush writes everything queued and syncs it to disk. The Batch cannot be
// used afterwards.
func (b *Batch) Flush() error {
	if err := b.wb.Flush(); err != nil {
		return fmt.Errorf("write objects: %w", err)
	}
	if err := b.r.db.Sync(); err != nil {
		return fmt.Errorf("sync objects: %w", err)
	}
	return nil
}

// Cancel discards a batch that will not be flushed.
func (b *Batch) Cancel() { b.wb.Cancel() }
