package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4/table"
)

// TestBulkCloseKilledInMerge: a bulk load's Close merges level 0 after
// Badger deleted the last write-ahead log, writing the merged tables
// before the MANIFEST lists them. A writer killed there leaves a table
// the MANIFEST does not list (here: one cut off mid-write) and no .mem;
// the marker Close keeps meanwhile says why, so readers, fsck and the next
// writer accept the directory (Badger deletes the table, the next writer
// the marker), and a default-options read-only open reads it. Without the
// marker the same state is still damage (the MANIFEST lost records). A
// clean bulk Close leaves no marker.
func TestBulkCloseKilledInMerge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Hash][]byte{}
	for i := 0; i < 100; i++ {
		p := fmt.Appendf(nil, "object %d", i)
		h, err := r.PutObject(KindBlob, p)
		if err != nil {
			t.Fatal(err)
		}
		want[h] = p
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, bulkCloseName)
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a clean bulk Close left its marker (%v)", err)
	}
	mf, err := readManifest(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	var top uint64
	for id := range mf.Tables {
		top = max(top, id)
	}
	if top == 0 {
		t.Fatal("the load left no table")
	}
	// What the kill leaves: the merge's next table, cut off mid-write.
	orphan := filepath.Join(dir, table.IDToFilename(top+1))
	if err := os.WriteFile(orphan, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if ro, err := Open(dir, Options{ReadOnly: true}); !errors.As(err, new(*DamageError)) {
		if err == nil {
			_ = ro.Close()
		}
		t.Fatalf("an unlisted table with neither log nor marker: %v, want a DamageError", err)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open after a kill in the merge: %v", err)
	}
	for h, p := range want {
		if _, got, err := ro.Get(h); err != nil || string(got) != string(p) {
			t.Fatalf("object %s: %q, %v", h, got, err)
		}
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("the next writer after a kill in the merge: %v", err)
	}
	rep, err := w.Fsck(context.Background())
	if err != nil || !rep.OK() {
		t.Errorf("fsck after a kill in the merge: %v %v", rep, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{marker, orphan} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after the next writer (%v)", filepath.Base(p), err)
		}
	}
	readDefault(t, dir, want, len(want))
}
