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
