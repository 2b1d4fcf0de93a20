package repo

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// TestReaderOptionsByCompression: a read-only handle drops the block cache
// only when no table is compressed, and reads a repository whose tables
// were written compressed (as writers did before writerOptions chose
// None) as well as one written by our writers: every object, by point
// lookups and in ascending order (cursors).
func TestReaderOptionsByCompression(t *testing.T) {
	for _, c := range []struct {
		name        string
		compression options.CompressionType
	}{{"none", options.None}, {"snappy", options.Snappy}, {"zstd", options.ZSTD}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			// Badger refuses compression without a block cache; the writers
			// that wrote compressed tables had one.
			bo := writerOptions(baseOptions(badger.DefaultOptions(dir), Options{})).
				WithCompression(c.compression).WithBlockCacheSize(16 << 20)
			db, err := badger.Open(bo)
			if err != nil {
				t.Fatal(err)
			}
			want := map[Hash][]byte{}
			wb := db.NewWriteBatch()
			for i := range 20000 {
				p := fmt.Appendf(nil, "h%d.bench.test. 300 IN A 10.%d.%d.%d", i, i>>16&255, i>>8&255, i&255)
				h := HashObject(KindBlob, p)
				want[h] = p
				if err := wb.Set(objKey(h), encodeObjectValue(KindBlob, p)); err != nil {
					t.Fatal(err)
				}
			}
			if err := wb.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if got := compressedTables(dir); got != (c.compression != options.None) {
				t.Fatalf("compressedTables = %v", got)
			}
			r, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got, cached := compressedTables(r.snap.dir), r.db.Opts().BlockCacheSize > 0; got != cached {
				t.Errorf("compressed tables %v, block cache %v", got, cached)
			}
			hashes := slices.SortedFunc(func(yield func(Hash) bool) {
				for h := range want {
					if !yield(h) {
						return
					}
				}
			}, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
			err = r.View(func(rd Reader) error {
				for _, h := range hashes {
					kind, p, err := rd.Get(h)
					if err != nil {
						return err
					}
					if kind != KindBlob || !bytes.Equal(p, want[h]) {
						return fmt.Errorf("%s: read %s %q, want blob %q", h.Short(), kind, p, want[h])
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hashes[:100] {
				if _, p, err := r.Get(h); err != nil || !bytes.Equal(p, want[h]) {
					t.Fatalf("%s: %q, %v", h.Short(), p, err)
				}
			}
		})
	}
}
