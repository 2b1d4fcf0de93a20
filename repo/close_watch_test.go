package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCloseGivesUpOnAFailingFlush: Badger retries a failed memtable flush
// forever and its Close waits for it. A writer whose directory is deleted
// under it (or whose disk fails) must still finish closing, with an error
// that says why, instead of hanging the process (a secondary daemon told to
// stop never stopped).
func TestCloseGivesUpOnAFailingFlush(t *testing.T) {
	old := flushGiveUp
	flushGiveUp = 2
	t.Cleanup(func() { flushGiveUp = old })

	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("www 300 IN A 192.0.2.1\n")
	if err := r.Put(HashObject(KindBlob, payload), KindBlob, payload); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Close() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "gave up after 2 failed attempts to write its memtable") ||
			!strings.Contains(err.Error(), dir) {
			t.Fatalf("Close = %v; want the flush failure, naming %s", err, dir)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waits for a memtable flush that cannot succeed")
	}
}

// TestCloseAfterWrites: the watch changes nothing for a writer whose
// flushes work: Close succeeds and what was written is there on reopen.
func TestCloseAfterWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("www 300 IN A 192.0.2.1\n")
	h := HashObject(KindBlob, payload)
	if err := r.Put(h, KindBlob, payload); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r, err = Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if ok, err := r.Has(h); !ok || err != nil {
		t.Fatalf("after reopen: Has = %v, %v", ok, err)
	}
}
