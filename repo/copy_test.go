//go:build !windows

package repo

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// TestCopyFileKeepsHoles: snapshots copy a crashed writer's preallocated
// logs; the copy must hold the same bytes without writing out the holes.
func TestCopyFileKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("zonegit!"), 512)
	for _, off := range []int64{0, 8 << 20} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(24 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(src, dst); err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the copy differs from the source")
	}
	if runtime.GOOS != "linux" {
		return
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > 4<<20 {
		t.Errorf("the copy allocates %d bytes for 8 KiB of data: holes were written out", st.Blocks*512)
	}
}
