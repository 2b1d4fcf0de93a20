package server

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

func TestSnapshotterReopensAndRefcounts(t *testing.T) {
	dir := t.TempDir()
	w, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c0, err := repotest.SyntheticZone(w, "example.com.", "main", 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// A long interval: the test drives refresh itself.
	s, err := NewSnapshotter(dir, SnapshotterOptions{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r1, release1, err := s.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if tip, err := r1.Branch("example.com.", "main"); err != nil || tip != c0 {
		t.Fatalf("main = %s, %v; want %s", tip.Short(), err, c0.Short())
	}
	if s.refresh() || opens(s) != 1 {
		t.Errorf("unchanged directory re-opened (opens %d)", opens(s))
	}

	// A writer commits; while it has the directory open the last good
	// handle keeps serving.
	w, err = repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatalf("writer open beside the read-only snapshot: %v", err)
	}
	c1, err := repotest.SetA(w, "example.com.", "main", []string{"h1"}, 60, [4]byte{192, 0, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	s.refresh()
	r, release, err := s.Acquire()
	if err != nil {
		t.Fatalf("acquire while a writer is open: %v", err)
	}
	if _, err := r.Branch("example.com.", "main"); err != nil {
		t.Errorf("handle served while a writer is open: %v", err)
	}
	release()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if !s.refresh() {
		t.Fatal("no re-open after the writer closed")
	}
	r2, release2, err := s.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if tip, err := r2.Branch("example.com.", "main"); err != nil || tip != c1 {
		t.Errorf("after re-open main = %s, %v; want %s", tip.Short(), err, c1.Short())
	}
	// The replaced handle is still open for the request holding it.
	if tip, err := r1.Branch("example.com.", "main"); err != nil || tip != c0 {
		t.Errorf("held old handle: main = %s, %v; want %s", tip.Short(), err, c0.Short())
	}
	release1()
	release1() // idempotent

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Acquire(); err == nil {
		t.Error("Acquire after Close succeeded")
	}
}

func TestSnapshotterMissingDirectory(t *testing.T) {
	_, err := NewSnapshotter(filepath.Join(t.TempDir(), "absent"), SnapshotterOptions{})
	if err == nil {
		t.Fatal("no error for a missing directory")
	}
}

func TestSnapshotterNotReadableYet(t *testing.T) {
	// An empty directory is not a repository: Acquire says to come back
	// later (503) rather than failing the server.
	s, err := NewSnapshotter(t.TempDir(), SnapshotterOptions{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, err = s.Acquire()
	if err == nil {
		t.Skip("an empty directory opened read-only; nothing to check")
	}
	if !errors.Is(err, ErrSnapshotUnavailable) {
		t.Errorf("Acquire: %v, want ErrSnapshotUnavailable", err)
	}
}

// opens is how many handles s has opened so far.
func opens(s *Snapshotter) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}
