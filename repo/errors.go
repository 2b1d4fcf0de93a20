package repo

import "errors"

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
