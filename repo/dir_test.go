package repo_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// newRepoDir makes a real repository with one branch at dir and closes it.
func newRepoDir(t *testing.T, dir string) {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repotest.SyntheticZone(r, "example.com.", "main", 10); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInspectDir(t *testing.T) {
	base := t.TempDir()

	d, err := repo.InspectDir(filepath.Join(base, "absent"))
	if err != nil || d.Exists || d.Check() != nil {
		t.Errorf("absent: %+v %v", d, err)
	}

	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := repo.InspectDir(empty); err != nil || !d.Empty() || d.IsRepository() || d.Check() != nil {
		t.Errorf("empty: %+v %v", d, err)
	}

	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.InspectDir(file); !errors.Is(err, repo.ErrNotRepository) || !strings.Contains(err.Error(), file) {
		t.Errorf("file: %v, want ErrNotRepository naming it", err)
	}

	rp := filepath.Join(base, "repo")
	newRepoDir(t, rp)
	d, err = repo.InspectDir(rp)
	if err != nil || !d.IsRepository() || d.Check() != nil || len(d.Foreign) != 0 {
		t.Fatalf("repository: %+v %v", d, err)
	}
	for _, want := range []string{"MANIFEST", "KEYREGISTRY"} {
		if !contains(d.Files, want) {
			t.Errorf("repository files %v lack %s", d.Files, want)
		}
	}

	// A user's file (or a directory, or a file only named like Badger's)
	// makes it something else, named in the error.
	for _, name := range []string{"notes.txt", "sub", "x.sst", "000001.sst.bak"} {
		p := filepath.Join(rp, name)
		if name == "sub" {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte("mine"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := repo.InspectDir(rp)
		if err != nil || d.IsRepository() {
			t.Errorf("with %s: %+v %v", name, d, err)
		}
		if err := d.Check(); !errors.Is(err, repo.ErrNotRepository) || !strings.Contains(err.Error(), `"`+name+`"`) || !strings.Contains(err.Error(), rp) {
			t.Errorf("with %s: Check() = %v, want ErrNotRepository naming %s and the path", name, err, name)
		}
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemoveRepository: only a repository's files go, then the directory
// if empty; anything else stops it before it deletes anything; a writer's
// lock stops it; a damaged repository can be removed.
func TestRemoveRepository(t *testing.T) {
	base := t.TempDir()

	rp := filepath.Join(base, "repo")
	newRepoDir(t, rp)
	notes := filepath.Join(rp, "notes.txt")
	if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := repo.InspectDir(rp)
	err := repo.RemoveRepository(rp, false)
	if !errors.Is(err, repo.ErrNotRepository) || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("with notes.txt: %v, want ErrNotRepository naming it", err)
	}
	after, _ := repo.InspectDir(rp)
	if strings.Join(after.Files, ",") != strings.Join(before.Files, ",") {
		t.Fatalf("a refused removal deleted files: %v -> %v", before.Files, after.Files)
	}
	if err := os.Remove(notes); err != nil {
		t.Fatal(err)
	}

	// A writer holds it: nothing is removed.
	w, err := repo.Open(rp, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.RemoveRepository(rp, false); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("locked: %v, want ErrLocked", err)
	}
	// A reader is refused too, and changes nothing either.
	if _, err := repo.Open(rp, repo.Options{ReadOnly: true, LockWait: time.Millisecond}); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("read-only open beside a writer: %v, want ErrLocked", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d, _ := repo.InspectDir(rp); !d.IsRepository() {
		t.Fatalf("a locked removal changed the repository: %+v", d)
	}

	if err := repo.RemoveRepository(rp, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rp); !os.IsNotExist(err) {
		t.Errorf("directory left behind: %v", err)
	}
	if err := repo.RemoveRepository(rp, false); err != nil {
		t.Errorf("absent: %v", err)
	}

	// keepDir leaves the (now empty) directory.
	kept := filepath.Join(base, "kept")
	newRepoDir(t, kept)
	if err := repo.RemoveRepository(kept, true); err != nil {
		t.Fatal(err)
	}
	if d, err := repo.InspectDir(kept); err != nil || !d.Empty() {
		t.Errorf("keepDir: %+v %v, want an empty directory", d, err)
	}

	// A damaged repository (truncated tables) is removed without opening it.
	damaged := filepath.Join(base, "damaged")
	newRepoDir(t, damaged)
	d, _ := repo.InspectDir(damaged)
	for _, f := range d.Files {
		if strings.HasSuffix(f, ".sst") || f == "MANIFEST" {
			if err := os.Truncate(filepath.Join(damaged, f), 3); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := repo.RemoveRepository(damaged, false); err != nil {
		t.Fatalf("damaged: %v", err)
	}
	if _, err := os.Stat(damaged); !os.IsNotExist(err) {
		t.Errorf("damaged directory left behind: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
