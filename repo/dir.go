package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotRepository: a path that is neither absent, nor an empty directory,
// nor a zonegit repository (a directory of Badger's files and nothing else).
var ErrNotRepository = errors.New("not a zonegit repository")

// repositoryFile reports whether name is one of the files a repository
// directory consists of: Badger's data files (badgerFile: tables, value
// logs, memtable logs, manifest, key registry, discard stats), the rewrite
// temporaries of its manifest and key registry, and the pid file of its
// directory lock. Badger creates nothing else there.
func repositoryFile(name string) bool {
	switch name {
	case manifestName + "-REWRITE", "REWRITE-" + keyRegistryName, lockName:
		return true
	}
	return badgerFile(name)
}

// Dir is what a path holds, as far as a repository is concerned.
type Dir struct {
	Path string
	// Exists is false when nothing is at Path.
	Exists bool
	// Files are the repository files in the directory, sorted.
	Files []string
	// Foreign are the other entries (files, directories, links), sorted.
	// A repository has none; they are never deleted.
	Foreign []string
}

// InspectDir says what dir holds: nothing, an empty directory, a zonegit
// repository, or something else. It is the one definition of which files
// belong to a repository. It reads the directory listing only; it never
// opens the database or writes anything. A path that is not a directory
// (a file) is an error wrapping ErrNotRepository.
func InspectDir(dir string) (Dir, error) {
	d := Dir{Path: dir}
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	d.Exists = true
	if !st.IsDir() {
		return d, fmt.Errorf("%s is a file, not a directory: %w", dir, ErrNotRepository)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return d, err
	}
	for _, e := range entries {
		if e.Type().IsRegular() && repositoryFile(e.Name()) {
			d.Files = append(d.Files, e.Name())
		} else {
			d.Foreign = append(d.Foreign, e.Name())
		}
	}
	sort.Strings(d.Files)
	sort.Strings(d.Foreign)
	return d, nil
}

// Empty reports an existing directory with nothing in it.
func (d Dir) Empty() bool { return d.Exists && len(d.Files) == 0 && len(d.Foreign) == 0 }

// IsRepository reports a directory holding repository files and nothing else.
func (d Dir) IsRepository() bool { return d.Exists && len(d.Files) > 0 && len(d.Foreign) == 0 }

// Check returns nil when a repository may be created or used at the path
// (absent, an empty directory, or a repository), and otherwise an error
// wrapping ErrNotRepository that names the path and what else it holds.
func (d Dir) Check() error {
	if !d.Exists || len(d.Foreign) == 0 {
		return nil
	}
	what := "files that are not part of a zonegit repository"
	if len(d.Files) == 0 {
		what = "files, and is not a zonegit repository"
	}
	return fmt.Errorf("%s holds %s: %s: %w", d.Path, what, listNames(d.Foreign), ErrNotRepository)
}

// listNames quotes up to ten names for an error message.
func listNames(names []string) string {
	const most = 10
	q := make([]string, 0, most+1)
	for i, n := range names {
		if i == most {
			q = append(q, fmt.Sprintf("and %d more", len(names)-most))
			break
		}
		q = append(q, fmt.Sprintf("%q", clip(n)))
	}
	return strings.Join(q, ", ")
}

// RemoveRepository deletes the repository at dir: its files, and then the
// directory itself if it is left empty and keepDir is false. It deletes
// nothing at all when dir holds anything that is not a repository file
// (that is an error wrapping ErrNotRepository naming them), or when another
// process holds the repository for writing (ErrLocked). An absent dir is
// not an error. It does not open the database, so a damaged repository can
// be removed too.
func RemoveRepository(dir string, keepDir bool) error {
	d, err := InspectDir(dir)
	if err != nil {
		return err
	}
	if !d.Exists {
		return nil
	}
	if err := d.Check(); err != nil {
		return err
	}
	// The writer's lock, without opening the database (a damaged one
	// would not survive it): no writer or reader of ours can open the
	// repository while it is being removed.
	l, err := tryLockDir(dir, true)
	if errors.Is(err, errLockBusy) {
		return fmt.Errorf("remove repository %s: %w: %s has it open", dir, ErrLocked, writerName(dir))
	}
	if err != nil {
		return fmt.Errorf("lock repository %s: %w", dir, err)
	}
	defer l.unlock() //nolint:errcheck // closing the descriptor only drops the lock
	// Tables and logs first, the manifest last, so an interrupted removal
	// leaves a directory Badger refuses to open rather than a repository
	// that silently lost data.
	sort.SliceStable(d.Files, func(i, j int) bool {
		return d.Files[i] != "MANIFEST" && d.Files[j] == "MANIFEST"
	})
	for _, name := range d.Files {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove repository %s: %w", dir, err)
		}
	}
	if keepDir {
		return nil
	}
	// Removes the directory only if nothing appeared in it meanwhile.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove repository directory %s: %w", dir, err)
	}
	return nil
}
