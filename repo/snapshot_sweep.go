package repo

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A read-only handle's private snapshot directory is removed when the
// handle closes. A reader that is killed (serve stopped with SIGKILL, a
// Terraform plugin killed by a cancelled apply) leaves it behind, and its
// hard links keep the tables a writer has since deleted on disk: each
// leftover holds up to a copy of the repository. So each snapshot
// directory is locked (flock, shared) by its owner for as long as it
// exists, and a new snapshot first removes the ones in the same place
// whose lock nobody holds.
//
// Only directories named with snapshotDirMark are swept: older versions
// named theirs "zonegit-snapshot-" without holding a lock, so an unlocked
// one of theirs may still be in use.

// snapshotDirMark is the part of a snapshot directory's name that says its
// owner holds a lock on it.
const snapshotDirMark = "-snapshot-locked-"

// snapshotSweepAge is how old an unlocked snapshot directory must be
// before a sweep removes it: its owner creates it and then locks it, and
// must not lose it in between.
const snapshotSweepAge = time.Minute

// snapshotSweepEvery is how often one process sweeps one directory (a
// serve opens snapshots often; leftovers come only from killed processes).
const snapshotSweepEvery = 10 * time.Minute

var snapshotSweeps struct {
	sync.Mutex
	last map[string]time.Time
}

// holdSnapshotDir locks a new snapshot directory for its owner.
func holdSnapshotDir(dir string) (string, *dirLock, error) {
	if !sharedLocksSeparate {
		// Windows' lock is a file held open inside the directory, which
		// would keep the directory from being removed; nothing sweeps
		// there (sweepSnapshots).
		return dir, nil, nil
	}
	l, err := tryLockDir(dir, false)
	if err != nil {
		_ = os.Remove(dir) // the lock's error is the one to report
		return "", nil, err
	}
	return dir, l, nil
}

// sweepSnapshots removes the snapshot directories in parent whose names
// start with prefix, that are older than snapshotSweepAge and whose lock
// nobody holds. It is a tidy-up of what dead processes left: what it
// cannot remove (another user's directory, a failing disk) stays, and the
// open that called it goes on.
func sweepSnapshots(parent, prefix string) {
	if !sharedLocksSeparate {
		// Without a shared lock an owner's hold would exclude other
		// readers' sweeps only by luck: sweep nothing.
		return
	}
	now := time.Now()
	snapshotSweeps.Lock()
	if snapshotSweeps.last == nil {
		snapshotSweeps.last = map[string]time.Time{}
	}
	if t, ok := snapshotSweeps.last[parent]; ok && now.Sub(t) < snapshotSweepEvery {
		snapshotSweeps.Unlock()
		return
	}
	snapshotSweeps.last[parent] = now
	snapshotSweeps.Unlock()

	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < snapshotSweepAge {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		l, err := tryLockDir(dir, true)
		if err != nil {
			continue // in use (errLockBusy), or not ours to look at
		}
		_ = os.RemoveAll(dir)
		_ = l.unlock()
	}
}
