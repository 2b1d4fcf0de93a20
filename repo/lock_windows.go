//go:build windows

package repo

import (
	"errors"
	"path/filepath"
	"syscall"
)

// dirLock on Windows mirrors Badger's writer lock (dir_windows.go): the
// directory's LOCK file opened with no sharing and deleted on close. It has
// no shared mode, so readers exclude each other too.
type dirLock struct{ h syscall.Handle }

const (
	fileAttributeTemporary = 0x00000100
	fileFlagDeleteOnClose  = 0x04000000
	errorSharingViolation  = syscall.Errno(32)
)

func tryLockDir(dir string, exclusive bool) (*dirLock, error) {
	p, err := syscall.UTF16PtrFromString(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, err
	}
	h, err := syscall.CreateFile(p, 0, 0, nil, syscall.OPEN_ALWAYS,
		fileAttributeTemporary|fileFlagDeleteOnClose, 0)
	if err != nil {
		if errors.Is(err, errorSharingViolation) {
			return nil, errLockBusy
		}
		return nil, err
	}
	return &dirLock{h: h}, nil
}

func (l *dirLock) unlock() error {
	if l == nil || l.h == 0 {
		return nil
	}
	err := syscall.CloseHandle(l.h)
	l.h = 0
	return err
}

// sharedLocksSeparate is false: a busy lock may be a reader or a writer.
const sharedLocksSeparate = false
