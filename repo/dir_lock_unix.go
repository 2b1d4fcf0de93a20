//go:build !windows && !plan9 && !js && !wasip1 && !aix

package repo

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes the lock a Badger writer takes (an exclusive flock on the
// directory itself, as in Badger's dir_unix.go), so no writer can open the
// repository while it is being removed. It does not open the database,
// which a damaged repository would not survive.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock repository %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("repository %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock repository %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// heldByWriter reports whether a writer holds dir's lock, by asking for a
// shared flock without waiting and letting it go at once. It writes
// nothing, so a reader can tell "in use" from "damaged" after a read-only
// open failed.
func heldByWriter(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN) // closing f releases it anyway
	return false
}
