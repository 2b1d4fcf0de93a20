//go:build linux || darwin || freebsd

package repo

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// freeSpace returns the bytes available to us on the filesystem holding
// path, or -1 if the system cannot say.
func freeSpace(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return -1, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // field types differ per system
}

// fileIdent identifies a file's content well enough to reuse an earlier
// copy of it: same inode, size and modification time.
func fileIdentOf(fi os.FileInfo) fileIdent {
	id := fileIdent{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // field types differ per system
	}
	return id
}
