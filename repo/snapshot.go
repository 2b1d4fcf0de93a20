package repo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultReaderWait is how long a writer waits for our readers to let go
// of the directory (see Options.LockWait).
const DefaultReaderWait = 10 * time.Second

// lockPoll is how often a waiting open tries the directory's lock again.
const lockPoll = 25 * time.Millisecond

var (
	// errLockBusy: tryLockDir found the lock held in a conflicting mode.
	errLockBusy = errors.New("directory lock is held")
	// errReadersActive: only readers hold the lock; a writer waits.
	errReadersActive = errors.New("readers hold the directory")
	// errNoRepository: the directory holds no Badger files.
	errNoRepository = errors.New("no zonegit repository there (no Badger files)")
)

// fileIdent is what a detached snapshot remembers of each source file it
// copied, to link instead of copy it next time if it has not changed.
type fileIdent struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

// snapshot is a private directory holding the repository's files for one
// read-only handle: hard links to the source's files (while the handle
// holds the source's shared lock, nobody can change them) or copies.
type snapshot struct {
	dir    string // the private directory Badger opens
	source string // absolute path of the repository
	// copied lists files copied from the source (or linked from an earlier
	// detached snapshot's copies) that nothing has written to since; a
	// later detached snapshot may link them. Only tables and value logs:
	// Badger never writes to those once a writer has closed them.
	copied map[string]fileIdent
	// recover: the source held a write-ahead log (.mem), left by a writer
	// that did not close; the snapshot is a full copy and is recovered
	// with a writable open before it is read (never done to the source).
	recover bool
	// hold is a shared lock on dir for as long as it exists: it tells a
	// sweep (sweepSnapshots) that the directory is in use.
	hold *dirLock
}

// reusable reports whether a later detached snapshot may link s's files.
func (s *snapshot) reusable() bool { return s != nil && !s.recover && s.copied != nil }

// remove deletes the private directory.
func (s *snapshot) remove() error {
	if s == nil || s.dir == "" {
		return nil
	}
	err := os.RemoveAll(s.dir)
	// Unlocked only once removed: a sweep never meets it half gone.
	if uerr := s.hold.unlock(); err == nil {
		err = uerr
	}
	s.dir, s.hold = "", nil
	return err
}

// takeSnapshot makes a private directory with the source's Badger files.
// The caller holds the source's shared lock, so no writer changes them
// meanwhile. With link, files are hard-linked (the caller keeps the lock
// for the handle's life, so no writer can truncate them: Badger truncates a
// table to zero before it deletes it); otherwise they are copied, except
// unchanged tables and value logs that reuse already holds a copy of.
// A source with a write-ahead log is always copied whole: it must be
// recovered with a writable open, which rewrites files.
func takeSnapshot(src string, link bool, reuse *snapshot) (*snapshot, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", src, err)
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", src, err)
	}
	var names []string
	hasManifest, hasMem := false, false
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !badgerFile(name) {
			continue
		}
		names = append(names, name)
		hasManifest = hasManifest || name == manifestName
		hasMem = hasMem || strings.HasSuffix(name, ".mem")
	}
	if !hasManifest {
		if len(names) > 0 {
			return nil, &DamageError{Path: src, What: manifestName, Detail: "missing, but the directory holds Badger files"}
		}
		return nil, fmt.Errorf("open repository %s: %w", src, errNoRepository)
	}
	if !reuse.reusable() || reuse.source != abs {
		reuse = nil
	}
	if hasMem {
		link, reuse = false, nil
	}
	s, err := fillSnapshot(src, abs, names, hasMem, link, reuse, false)
	var ns *NoSpaceError
	if errors.As(err, &ns) {
		// Copies need room; the temporary directory may have it when the
		// repository's filesystem is full.
		s, err = fillSnapshot(src, abs, names, hasMem, link, reuse, true)
	}
	return s, err
}

// fillSnapshot makes the private directory (in the temporary directory if
// inTemp) and links or copies names into it.
func fillSnapshot(src, abs string, names []string, hasMem, link bool, reuse *snapshot, inTemp bool) (*snapshot, error) {
	dir, hold, err := makeSnapshotDir(abs, inTemp)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: make a private snapshot directory: %w", src, err)
	}
	s := &snapshot{dir: dir, source: abs, recover: hasMem, hold: hold}
	if !link && !hasMem {
		s.copied = map[string]fileIdent{}
	}
	for _, name := range names {
		sp, dp := filepath.Join(abs, name), filepath.Join(dir, name)
		fi, err := os.Lstat(sp)
		if err != nil {
			_ = s.remove() // the error above is the one to report
			return nil, fmt.Errorf("open repository %s: %w", src, err)
		}
		id := fileIdentOf(fi)
		ext, _ := numberedFile(name)
		immutable := ext == ".sst" || ext == ".vlog"
		done := link && os.Link(sp, dp) == nil
		if !done && reuse != nil && immutable {
			if prev, ok := reuse.copied[name]; ok && prev == id {
				done = os.Link(filepath.Join(reuse.dir, name), dp) == nil
			}
		}
		if !done {
			if err := copyFile(sp, dp); err != nil {
				_ = s.remove() // the copy's error is the one to report
				if errors.Is(err, syscall.ENOSPC) {
					return nil, &NoSpaceError{Path: src, Free: -1, Cause: fmt.Errorf("copying it to a private snapshot in %s: %w", dir, err)}
				}
				return nil, fmt.Errorf("open repository %s: copy %s to a private snapshot: %w", src, name, err)
			}
		}
		if s.copied != nil && immutable {
			s.copied[name] = id
		}
	}
	return s, nil
}

// makeSnapshotDir creates the private directory, locked (shared) until
// it is removed: in the temporary directory when it is on the
// repository's filesystem (hard links work) or inTemp, else beside the
// repository if we may write there, else in the temporary directory anyway
// (files are then copied). Stale directories of killed readers in the
// same place are swept first.
func makeSnapshotDir(src string, inTemp bool) (string, *dirLock, error) {
	tmp := os.TempDir()
	if !inTemp && !sameFilesystem(tmp, src) {
		parent := filepath.Dir(src)
		if sameFilesystem(parent, src) {
			prefix := "." + filepath.Base(src) + snapshotDirMark
			sweepSnapshots(parent, prefix)
			if d, err := os.MkdirTemp(parent, prefix); err == nil {
				return holdSnapshotDir(d)
			}
		}
	}
	prefix := "zonegit" + snapshotDirMark
	sweepSnapshots(tmp, prefix)
	d, err := os.MkdirTemp(tmp, prefix)
	if err != nil {
		return "", nil, err
	}
	return holdSnapshotDir(d)
}

// sameFilesystem reports whether a and b are on one filesystem, as far as
// the system can tell (true when it cannot: linking is tried anyway).
func sameFilesystem(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return false
	}
	ia, ib := fileIdentOf(fa), fileIdentOf(fb)
	if ia.ino == 0 || ib.ino == 0 {
		return true
	}
	return ia.dev == ib.dev
}

// copyFile copies src to a new file dst, keeping holes where the system
// can find them (copyData), else byte for byte (io.Copy uses
// copy_file_range or sendfile where the system has them).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if ok, err := copyData(in, out, fi.Size()); ok || err != nil {
		if err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lockShared takes the directory's shared lock for a reader, waiting up to
// wait for a writer to close the directory.
func lockShared(path string, wait time.Duration) (*dirLock, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := tryLockDir(path, false)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, errLockBusy) {
			return nil, fmt.Errorf("open repository %s: lock: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("open repository %s: %w: %s is writing it; our readers never open a directory "+
				"while a writer has it (Badger's read-only open would delete the writer's new tables); try again when it has finished",
				path, ErrLocked, writerName(path))
		}
		time.Sleep(lockPoll)
	}
}

// writerName describes the process holding the directory for writing, from
// the pid Badger writes into LOCK.
func writerName(path string) string {
	b, err := os.ReadFile(filepath.Join(path, lockName))
	if err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return fmt.Sprintf("another process (pid %d)", pid)
		}
	}
	return "another process"
}
