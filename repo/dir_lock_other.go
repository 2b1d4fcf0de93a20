//go:build windows || plan9 || js || wasip1 || aix

package repo

// lockDir proves no writer holds the repository by opening it for writing
// and closing it again: Badger's lock on these systems is not a flock this
// package can take alongside it. The check is not held during the removal.
func lockDir(dir string) (unlock func(), err error) {
	r, err := Open(dir, Options{})
	if err != nil {
		return nil, err
	}
	if err := r.Close(); err != nil {
		return nil, err
	}
	return func() {}, nil
}

// heldByWriter cannot be told without taking the lock on these systems.
func heldByWriter(string) bool { return false }
