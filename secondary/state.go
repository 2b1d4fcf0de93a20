package secondary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// stateFile is the persisted desired state. The version lets a later
// daemon refuse a file it does not understand instead of misreading it.
type stateFile struct {
	Version int      `json:"version"`
	Desired *Desired `json:"desired"` // null: no desired state
	Updated string   `json:"updated,omitempty"`
}

const stateVersion = 1

// DefaultStatePath is where the desired state of the replica at dir lives
// unless configured: beside the directory, never in it (the replica
// directory holds only Badger's files; see repo.InspectDir).
func DefaultStatePath(dir string) string {
	return filepath.Clean(dir) + ".secondary.json"
}

// loadState reads the desired state; a missing file is no desired state.
// A file that cannot be read or is not valid is an error: starting without
// the operator's desired state would silently undo it.
func loadState(path string) (*Desired, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var st stateFile
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("state file %s: %w (fix or remove it; removing it forgets the desired state)", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state file %s: version %d, this daemon reads version %d", path, st.Version, stateVersion)
	}
	if st.Desired != nil {
		if err := st.Desired.Validate(); err != nil {
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
	}
	return st.Desired, nil
}

// saveState writes the desired state atomically: a temporary file in the
// same directory, synced, renamed over the state file, then the directory
// synced, so a crash leaves either the old state or the new one.
func saveState(path string, d *Desired) error {
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Desired: d, Updated: time.Now().UTC().Format(time.RFC3339)}, "", "  ")
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("state file %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Directories cannot be synced on
// every system (Windows): there the rename is as durable as it gets.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !strings.Contains(err.Error(), "not supported") {
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
	for _, k := range sortedKeys(d.Pins) {
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
