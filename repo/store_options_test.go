package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
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
