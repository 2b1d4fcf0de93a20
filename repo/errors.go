package repo

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors callers act on; match them with errors.Is.
var (
	// ErrNotFound: the object or ref does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap saw a different current value.
	ErrConflict = errors.New("ref changed concurrently")
	// ErrCorrupt: bytes that do not decode, or do not hash to their key.
	ErrCorrupt = errors.New("corrupt object")
	// ErrHashMismatch: an object's payload does not hash to the hash it was offered under.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrLocked: another process holds the repository for writing.
	ErrLocked = errors.New("repository is in use by another process")
	// ErrReadOnly: a write was attempted on a read-only handle.
	ErrReadOnly = errors.New("repository is open read-only")
	// ErrInvalidName: a zone, branch or tag name that cannot become a ref.
	ErrInvalidName = errors.New("invalid name")
)

// ErrDamaged: the repository's files are damaged (truncated, missing or
// corrupt). The error's text says what is damaged and what to do; match it
// with errors.Is. See DamageError.
var ErrDamaged = errors.New("repository is damaged")

// DamageError says which part of a repository is damaged. Its text ends
// with what to do about it, so callers can show it as it is.
type DamageError struct {
	Path   string // the repository directory
	What   string // the damaged part, e.g. "table 000003.sst" or "MANIFEST"
	Detail string // what is wrong with it
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("repository %s is damaged: %s: %s; run `zonegit-replicate fsck --repo %s` to see what it affects, "+
		"then delete the directory and pull (or terraform apply) again; nothing was changed", e.Path, e.What, e.Detail, e.Path)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

// NoSpaceError: the filesystem holding the repository is (nearly) full.
// errors.Is(err, syscall.ENOSPC) is true.
type NoSpaceError struct {
	Path  string // the repository directory (or the private snapshot being written)
	Free  int64  // bytes available, -1 if unknown
	Need  int64  // bytes the operation wants available, 0 if unknown
	Cause error  // the underlying error, if any
}

func (e *NoSpaceError) Error() string {
	s := fmt.Sprintf("repository %s: no space left on device", e.Path)
	if e.Free >= 0 && e.Need > 0 {
		s += fmt.Sprintf(" (%s free on its filesystem, writing needs at least %s)", mib(e.Free), mib(e.Need))
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s + "; free some space and run the command again (nothing was lost: refs move only after their objects are stored)"
}

// Is makes errors.Is(err, syscall.ENOSPC) true.
func (e *NoSpaceError) Is(target error) bool { return target == syscall.ENOSPC }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
