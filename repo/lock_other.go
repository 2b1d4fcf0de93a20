//go:build plan9 || js || wasip1 || aix

package repo

// dirLock is a no-op where Badger has no directory lock we can share.
type dirLock struct{}

func tryLockDir(string, bool) (*dirLock, error) { return &dirLock{}, nil }

func (l *dirLock) unlock() error { return nil }

const sharedLocksSeparate = false
