package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// ErrSnapshotUnavailable means no snapshot could be taken yet (typically a
// writer holds the directory and has not closed it since it was created);
// the server answers 503 with Retry-After.
var ErrSnapshotUnavailable = errors.New("repository not readable yet")

// Snapshotter keeps a read-only handle on a repository directory that
// another process may be writing, and replaces it when the directory
// changes, so a server sees new commits within about one Interval of a
// writer closing the directory.
//
// Each handle is a detached private snapshot (repo.Options.Detached): the
// repository's files are copied (unchanged tables and value logs are
// linked from the previous snapshot's copies) while the snapshotter holds
// the directory's shared lock for a moment, and Badger opens the copy. So
// the server never opens the directory itself: a Badger read-only open of
// a directory a writer has open deletes the writer's new tables and maps
// files the writer truncates (SIGBUS). While a writer has the directory,
// the snapshot cannot be taken; the snapshotter keeps serving the last
// good handle and tries again on the next tick, as it does when the
// directory is damaged. Handles are reference counted: one that is
// replaced is closed (and its copy deleted) only when the last request
// using it releases it.
type Snapshotter struct {
	path     string
	interval time.Duration
	logger   wire.Logger // nil: silent

	refreshMu sync.Mutex // one re-open at a time
	mu        sync.Mutex
	cur       *snapHandle
	fp        string // directory fingerprint of cur
	lastErr   error
	opens     int
	closed    bool

	stop chan struct{}
	done chan struct{}
}

type snapHandle struct {
	r       *repo.Repo
	refs    int
	retired bool
}

// SnapshotterOptions configure a Snapshotter; zero values take defaults.
type SnapshotterOptions struct {
	Interval time.Duration // how often to look for changes; default 1 s
	Logger   wire.Logger   // a warning when a re-open fails; nil: silent
}

// NewSnapshotter starts watching the repository at path. The directory must
// exist; if it cannot be opened yet (a writer is active), Acquire returns
// ErrSnapshotUnavailable until it can. Close stops it.
func NewSnapshotter(path string, opts SnapshotterOptions) (*Snapshotter, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("repository %s: not a directory", path)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	s := &Snapshotter{
		path:     path,
		interval: opts.Interval,
		logger:   opts.Logger,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.refresh()
	go s.loop()
	return s, nil
}

func (s *Snapshotter) loop() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.refresh()
		}
	}
}

// refresh takes a new snapshot now if the directory's files changed since
// the current one was taken (or there is none). It reports whether a new
// handle is in use.
func (s *Snapshotter) refresh() bool {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	fp, err := fingerprint(s.path)
	if err != nil {
		s.setErr(fmt.Errorf("read repository directory: %w", err))
		return false
	}
	s.mu.Lock()
	same := s.cur != nil && fp == s.fp
	closed := s.closed
	prev := s.cur
	if prev != nil && !same && !closed {
		prev.refs++ // its copies are linked into the new snapshot
	}
	s.mu.Unlock()
	if same || closed {
		return false
	}
	opts := repo.Options{ReadOnly: true, Detached: true}
	if prev != nil {
		opts.Reuse = prev.r
	}
	r, err := repo.Open(s.path, opts)
	if prev != nil {
		s.release(prev)
	}
	if err != nil {
		// Most often a writer is active; keep the last good handle.
		s.setErr(err)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		r.Close()
		return false
	}
	old := s.cur
	s.cur, s.fp, s.lastErr = &snapHandle{r: r}, fp, nil
	s.opens++
	if old != nil {
		old.retired = true
		if old.refs == 0 {
			old.r.Close()
		}
	}
	return true
}

// release drops one reference to h, closing it if it was replaced and this
// was the last.
func (s *Snapshotter) release(h *snapHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h.refs--
	if h.retired && h.refs == 0 {
		h.r.Close()
	}
}

func (s *Snapshotter) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil || s.lastErr.Error() != err.Error() {
		if s.logger != nil {
			s.logger.Warn("replicate server: cannot re-open the repository yet; serving the last good state", "repository", s.path, "error", err.Error())
		}
	}
	s.lastErr = err
}

// Acquire returns the current handle; call release when done with it.
func (s *Snapshotter) Acquire() (*repo.Repo, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, fmt.Errorf("repository %s: snapshotter closed", s.path)
	}
	h := s.cur
	if h == nil {
		if s.lastErr != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrSnapshotUnavailable, s.lastErr)
		}
		return nil, nil, ErrSnapshotUnavailable
	}
	h.refs++
	var once sync.Once
	return h.r, func() { once.Do(func() { s.release(h) }) }, nil
}

// Close stops watching and closes the current handle once no request uses
// it.
func (s *Snapshotter) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	h := s.cur
	s.cur = nil
	var err error
	if h != nil {
		h.retired = true
		if h.refs == 0 {
			err = h.r.Close()
		}
	}
	s.mu.Unlock()
	<-s.done
	return err
}

// fingerprint summarises the directory's files (name, size, modification
// time): Badger changes at least one of them whenever a writer commits or
// closes (every writable open creates a new value log), so an unchanged
// fingerprint means an unchanged repository and the snapshot is skipped.
func fingerprint(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed while listing (compaction)
		}
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%d", filepath.Base(e.Name()), info.Size(), info.ModTime().UnixNano()))
	}
	sort.Strings(parts)
	return fmt.Sprint(parts), nil
}
