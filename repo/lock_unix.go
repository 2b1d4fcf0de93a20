//go:build !windows && !plan9 && !js && !wasip1 && !aix

package repo

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// dirLock is a flock(2) on the repository directory itself: the lock a
// writable Badger open takes (exclusive, dir_unix.go acquireDirectoryLock).
// Our readers take it shared while they look at the directory.
type dirLock struct{ f *os.File }

// tryLockDir takes the lock without waiting. errLockBusy means another
// holder has it in a conflicting mode.
func tryLockDir(dir string, exclusive bool) (*dirLock, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH | unix.LOCK_NB
	if exclusive {
		how = unix.LOCK_EX | unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLockBusy
		}
		return nil, err
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock (closing the descriptor drops the flock).
func (l *dirLock) unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// sharedLocksSeparate: a shared flock can tell readers from a writer, so a
// writer that finds the lock busy can wait for readers and fail fast on
// another writer.
const sharedLocksSeparate = true
