package resources

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// absPath is the replica's identity: its path made absolute and clean.
func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("path is empty")
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("make %q absolute: %w", p, err)
	}
	return a, nil
}

// readLocalRefs lists the branches of the repository at dir, read-only: it
// never writes to the replica, whatever state the replica is in. exists is
// false when nothing is at dir; an empty directory is a repository with no
// branches yet. A directory that also holds other files is still read (the
// plan refuses it, naming them); a file, or a directory without any
// repository file in it, is an error. An error wrapping repo.ErrLocked
// means another process is writing to it.
func readLocalRefs(dir string) (refs []repo.Ref, exists bool, err error) {
	d, err := repo.InspectDir(dir)
	if err != nil {
		return nil, d.Exists, err
	}
	if !d.Exists {
		return nil, false, nil
	}
	if d.Empty() {
		return nil, true, nil
	}
	if len(d.Files) == 0 {
		return nil, true, d.Check()
	}
	// A read-only open never changes the directory; it fails with
	// repo.ErrLocked while a writer has it and a *repo.DamageError (naming
	// the damage and the next step) when it is damaged.
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		return nil, true, err
	}
	defer r.Close()
	refs, err = r.Branches("")
	return refs, true, err
}

// madeDir remembers what was at a replica's path before a create, so that
// a failed create removes exactly what it made and nothing else.
type madeDir struct {
	dir string
	// wasEmpty: dir existed as an empty directory; keep it, remove only
	// the repository files put in it.
	wasEmpty bool
	// top is the highest directory the create had to make (dir itself or
	// one of its parents); "" when dir existed.
	top string
}

// recordMadeDir looks at dir before a create. It returns nil when there is
// nothing a failed create could have made: dir already holds a repository
// (or other files, which the create refuses anyway).
func recordMadeDir(dir string) (*madeDir, error) {
	d, err := repo.InspectDir(dir)
	if err != nil {
		return nil, err
	}
	switch {
	case d.Empty():
		return &madeDir{dir: dir, wasEmpty: true}, nil
	case d.Exists:
		return nil, nil
	}
	m := &madeDir{dir: dir, top: dir}
	for p := filepath.Dir(dir); p != filepath.Dir(p); p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		m.top = p
	}
	return m, nil
}

// undo removes what the create made: the repository files, then the
// directories it created, each only if it is empty. A repository that
// another writer has taken over meanwhile is left alone.
func (m *madeDir) undo() error {
	err := repo.RemoveRepository(m.dir, m.wasEmpty)
	switch {
	case errors.Is(err, repo.ErrLocked):
		return nil
	case err != nil:
		return err
	case m.wasEmpty || m.top == m.dir:
		return nil
	}
	for p := filepath.Dir(m.dir); ; p = filepath.Dir(p) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// A parent that something else has put files in since is
			// not ours to remove any more.
			if entries, rerr := os.ReadDir(p); rerr == nil && len(entries) > 0 {
				return nil
			}
			return err
		}
		if p == m.top || p == filepath.Dir(p) {
			return nil
		}
	}
}
