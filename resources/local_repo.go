package resources

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

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

// readLocalRefs lists the branches of the repository at dir, without taking
// its lock when it can. An error wrapping repo.ErrLocked means another
// process is writing to it. exists is false when dir does not
// exist; a directory that exists but is empty is a repository with no
// branches yet.
func readLocalRefs(dir string) (refs []repo.Ref, exists bool, err error) {
	empty, err := isEmptyDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	if empty {
		return nil, true, nil
	}
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		// A read-only open fails when the write-ahead log needs recovery,
		// which happens while another process writes. Tell that case
		// (ErrLocked) apart; otherwise recover the log as any writer would.
		w, werr := repo.Open(dir, repo.Options{})
		if werr != nil {
			if errors.Is(werr, repo.ErrLocked) {
				return nil, true, werr
			}
			return nil, true, err
		}
		r = w
	}
	defer r.Close()
	refs, err = r.Branches("")
	return refs, true, err
}

// isEmptyDir reports whether dir is an empty directory. A path that is not
// a directory is an error.
func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !st.IsDir() {
		return false, fmt.Errorf("%s is not a directory", dir)
	}
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// refsMap turns refs into the "<zone>/<branch>" => hex map stored in state.
func refsMap(refs []repo.Ref) map[string]string {
	out := make(map[string]string, len(refs))
	for _, r := range refs {
		out[r.Zone+"/"+r.Name] = r.Hash.String()
	}
	return out
}

// matchAny reports whether name matches one of the patterns; no patterns
// match everything (the replication client's filter semantics).
func matchAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// sortedKeys returns m's keys in order, for stable diagnostics and logs.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
