//go:build linux || darwin || freebsd

package repo

import (
	"errors"
	"io"
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

// copyData copies the data regions of in (size bytes) to the same offsets
// of out and leaves holes as holes. Badger preallocates logs with
// ftruncate (a crashed writer's value log is a 512 MiB file holding a few
// KiB), so reading the holes would cost seconds, and writing them out
// space the filesystem may not have. ok is false when the system cannot
// tell where the data is; nothing was written then.
func copyData(in, out *os.File, size int64) (ok bool, err error) {
	for off := int64(0); off < size; {
		data, err := in.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			if off == 0 {
				return false, nil
			}
			return true, err
		}
		hole, err := in.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			return true, err
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return true, err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return true, err
		}
		// *os.File.ReadFrom turns a LimitedReader of a file into
		// copy_file_range where it can.
		if _, err := io.Copy(out, io.LimitReader(in, hole-data)); err != nil {
			return true, err
		}
		off = hole
	}
	return true, out.Truncate(size)
}

// SyncDir makes the entries of dir durable (a file created or renamed
// there). A filesystem that cannot sync a directory (EINVAL, ENOTSUP) is
// as durable as it gets: that is not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
