package secondary

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// stateFile is the persisted desired state. The version lets a later
// daemon refuse a file it does not understand instead of misreading it.
// Replica names the directory of the daemon that wrote it, so that two
// daemons given the same --state cannot take each other's desired state.
type stateFile struct {
	Version int      `json:"version"`
	Replica string   `json:"replica,omitempty"` // absolute path of the replica directory
	Desired *Desired `json:"desired"`           // null: no desired state
	Updated string   `json:"updated,omitempty"`
}

const stateVersion = 1

// DefaultStatePath is where the desired state of the replica at dir lives
// unless configured: beside the directory, never in it (the replica
// directory holds only Badger's files; see repo.InspectDir).
func DefaultStatePath(dir string) string {
	return filepath.Clean(dir) + ".secondary.json"
}

// stateOwner is how a state file names its daemon's replica directory.
func stateOwner(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// readState reads and checks a state file; a missing file is (nil, nil).
func readState(path string) (*stateFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	var st stateFile
	if err := decodeStrict(b, &st); err != nil {
		if len(b) == 0 {
			err = errors.New("empty file")
		}
		return nil, fmt.Errorf("state file %s: %w (fix or remove it; removing it forgets the desired state)", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state file %s: version %d, this daemon reads version %d", path, st.Version, stateVersion)
	}
	return &st, nil
}

// loadState reads the desired state of the daemon whose replica is dir; a
// missing file is no desired state. A file that cannot be read, is not
// valid, or belongs to another replica is an error: starting without the
// operator's desired state, or with another daemon's, would silently undo
// it.
func loadState(path, dir string) (*Desired, error) {
	st, err := readState(path)
	if err != nil || st == nil {
		return nil, err
	}
	if err := checkOwner(path, st, dir); err != nil {
		return nil, err
	}
	if st.Desired != nil {
		if err := st.Desired.Validate(); err != nil {
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
	}
	return st.Desired, nil
}

// checkOwner refuses a state file written for another replica directory.
func checkOwner(path string, st *stateFile, dir string) error {
	if own := stateOwner(dir); st.Replica != "" && st.Replica != own {
		return fmt.Errorf("state file %s holds the desired state of the secondary whose replica is %s, not %s: "+
			"two daemons must not share a --state file (give each its own). If the replica was moved, move its "+
			"state file with it and set \"replica\" in the file to the new directory",
			path, wire.SafeText(st.Replica), own)
	}
	return nil
}

// pendingState is a desired state written to a temporary file beside the
// state file and synced, not yet renamed over it: what cannot be written
// (a read-only or full directory) fails before the pull it belongs to, so
// a refs change never comes without its desired state.
type pendingState struct {
	path, tmp string
}

// prepareState writes d for the replica dir to a synced temporary file.
// It refuses to take over a state file another replica's daemon wrote.
func prepareState(path, dir string, d *Desired) (*pendingState, error) {
	// A state file damaged while the daemon runs is replaced: the daemon
	// holds the desired state it stood for. Only another replica's is not.
	if st, err := readState(path); err == nil && st != nil {
		if err := checkOwner(path, st, dir); err != nil {
			return nil, err
		}
	}
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Replica: stateOwner(dir), Desired: d,
		Updated: time.Now().UTC().Format(time.RFC3339)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPrefix(path)+"*")
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) (*pendingState, error) {
		_ = tmp.Close()
		_ = os.Remove(name)
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(fmt.Errorf("sync: %w", err))
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	return &pendingState{path: path, tmp: name}, nil
}

// tempPrefix is the name prefix of path's temporary files.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// commit renames the temporary file over the state file and syncs the
// directory, so a crash leaves either the old state or the new one.
// renamed says whether the new state is in place (a failed directory sync
// leaves it in place, only perhaps not durable).
func (p *pendingState) commit() (renamed bool, err error) {
	if err := os.Rename(p.tmp, p.path); err != nil {
		_ = os.Remove(p.tmp)
		p.tmp = ""
		return false, fmt.Errorf("state file %s: %w", p.path, err)
	}
	p.tmp = ""
	return true, syncDir(filepath.Dir(p.path))
}

// abort removes the temporary file (after commit: nothing).
func (p *pendingState) abort() {
	if p != nil && p.tmp != "" {
		_ = os.Remove(p.tmp)
		p.tmp = ""
	}
}

// removeStaleTemps removes the temporary files a daemon killed while
// writing path left behind (each is a state never renamed into place).
func removeStaleTemps(path string) error {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), tempPrefix(path)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the stale temporary state file %s: %w", filepath.Join(dir, e.Name()), err)
		}
	}
	return nil
}

// syncDir makes a rename in dir durable (repo.SyncDir).
func syncDir(dir string) error {
	if err := repo.SyncDir(dir); err != nil {
		return fmt.Errorf("state directory %s: sync: %w", dir, err)
	}
	return nil
}

// Validate checks a desired state with the rules zonegit_replica's
// attributes follow, naming the first bad value.
func (d *Desired) Validate() error {
	for _, z := range d.Zones {
		if err := replicate.ValidateZonePattern(z); err != nil {
			return fmt.Errorf("zones: %w", err)
		}
	}
	for _, b := range d.Branches {
		if err := replicate.ValidateBranchPattern(b); err != nil {
			return fmt.Errorf("branches: %w", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.Pins)) {
		if err := replicate.ValidatePin(k, d.Pins[k]); err != nil {
			return fmt.Errorf("pins: %w", err)
		}
	}
	// Plan's own checks on the whole selection, so that nothing a pull
	// would refuse gets stored.
	if _, err := replicate.Plan(nil, nil, d.pullOptions()); err != nil {
		return err
	}
	return nil
}

// pullOptions is the selection of a follow pull: pinned branches at their
// pins, the rest at the primary's tips.
func (d *Desired) pullOptions() replicate.PullOptions {
	return replicate.PullOptions{Zones: d.Zones, Branches: d.Branches, Pins: d.Pins, Prune: d.Prune}
}

// clone returns a deep copy, so the stored state never shares maps or
// slices with a request.
func (d *Desired) clone() *Desired {
	if d == nil {
		return nil
	}
	c := *d
	c.Zones = append([]string(nil), d.Zones...)
	c.Branches = append([]string(nil), d.Branches...)
	if d.Pins != nil {
		c.Pins = make(map[string]string, len(d.Pins))
		for k, v := range d.Pins {
			c.Pins[k] = v
		}
	}
	return &c
}
