package repo

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Ref is a named pointer: a branch or tag of a zone.
type Ref struct {
	Zone string
	Name string
	Hash Hash
}

// ReflogEntry is one reflog record, in exactly the JSON shape the zonegit
// tools write (Go field names; Old/New as arrays of 32 numbers because Hash
// is a plain array — never give Hash a MarshalJSON/MarshalText method).
type ReflogEntry struct {
	Old      Hash
	New      Hash
	Author   string
	UnixTime int64
	TZOffset int
	Op       string
	Message  string
}

func refKey(name string) []byte { return []byte(refPrefix + name) }

func reflogKey(name string, seq uint64) []byte {
	k := make([]byte, 0, len(reflogPrefix)+len(name)+9)
	k = append(k, reflogPrefix...)
	k = append(k, name...)
	k = append(k, '/')
	return binary.BigEndian.AppendUint64(k, seq)
}

func getRef(txn *badger.Txn, name string) (Hash, bool, error) {
	var h Hash
	item, err := txn.Get(refKey(name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return h, false, nil
	}
	if err != nil {
		return h, false, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return h, false, err
	}
	if len(v) != 32 {
		return h, false, fmt.Errorf("ref %s: value of %d bytes, want 32: %w", name, len(v), ErrCorrupt)
	}
	copy(h[:], v)
	return h, true, nil
}

// RefHash returns the hash a ref name points at, or ErrNotFound.
func (r *Repo) RefHash(name string) (h Hash, err error) {
	err = r.view(func(txn *badger.Txn) error {
		var ok bool
		h, ok, err = getRef(txn, name)
		if err == nil && !ok {
			err = fmt.Errorf("ref %s: %w", name, ErrNotFound)
		}
		return err
	})
	return h, err
}

// Branch returns a branch tip, or ErrNotFound.
func (r *Repo) Branch(zone, branch string) (Hash, error) {
	return r.RefHash(BranchRef(zone, branch))
}

// listRefs returns every ref under base (refs/heads/ or refs/tags/), of one
// zone or of all zones when zone is "", split into zone and name.
func (r *Repo) listRefs(base, zone string) ([]Ref, error) {
	var out []Ref
	prefix := zonePrefix(base, zone)
	err := r.view(func(txn *badger.Txn) error {
		p := refKey(prefix)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			// Split what follows the base, not the zone prefix: with a
			// zone given, the rest would be the bare name.
			rest := string(item.Key()[len(refPrefix)+len(base):])
			zone, name, ok := SplitRefPath(rest)
			if !ok {
				continue // not a <zone>/<name> ref; not ours to interpret
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(v) != 32 {
				return fmt.Errorf("ref %s%s: value of %d bytes, want 32: %w", base, rest, len(v), ErrCorrupt)
			}
			ref := Ref{Zone: zone, Name: name}
			copy(ref.Hash[:], v)
			out = append(out, ref)
		}
		return nil
	})
	return out, err
}

func zonePrefix(base, zone string) string {
	if zone == "" {
		return base
	}
	return base + zone + "/"
}

// Branches lists the branches of one zone, or of all zones when zone is "",
// ordered by zone then name.
func (r *Repo) Branches(zone string) ([]Ref, error) {
	return r.listRefs(branchRefPrefix, zone)
}

// Tags lists the tags of one zone, or of all zones when zone is "".
func (r *Repo) Tags(zone string) ([]Ref, error) {
	return r.listRefs(tagRefPrefix, zone)
}

// Zones lists the zones with a presence marker, sorted.
func (r *Repo) Zones() ([]string, error) {
	var out []string
	err := r.view(func(txn *badger.Txn) error {
		p := refKey(zoneRefPrefix)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(it.Item().Key()[len(p):]))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// AddZone writes a zone's presence marker if it is absent.
func (r *Repo) AddZone(zone string) error {
	if err := ValidateZone(zone); err != nil {
		return err
	}
	return r.update(func(txn *badger.Txn) error { return ensureZone(txn, zone) })
}

func ensureZone(txn *badger.Txn, zone string) error {
	_, ok, err := getRef(txn, ZoneRef(zone))
	if err != nil || ok {
		return err
	}
	return txn.Set(refKey(ZoneRef(zone)), ZoneMarker[:])
}

// update runs fn in a read-write transaction and syncs the result, so a
// ref that moved stays moved.
func (r *Repo) update(fn func(txn *badger.Txn) error) error {
	if r.readOnly {
		return ErrReadOnly
	}
	if err := r.reserve(0, true); err != nil {
		return err
	}
	err := r.read(func() error { return r.db.Update(fn) })
	if errors.Is(err, badger.ErrConflict) {
		return fmt.Errorf("%w (another writer in this process updated the same ref)", ErrConflict)
	}
	if err != nil {
		return err
	}
	// Sync writes back every log: this write may have replaced a memtable
	// whose objects (Repo.Put does not sync) are in a log Badger's Sync
	// leaves out (syncLogs).
	return r.Sync()
}

// RefUpdate is one compare-and-swap on a ref. Old is the expected current
// value (ZeroHash: must not exist); New is the value to write (ZeroHash:
// delete). Log, when set, is appended to the ref's reflog with Old and New
// filled in.
type RefUpdate struct {
	Name string
	Old  Hash
	New  Hash
	Log  *ReflogEntry
}

// ConflictError says what a compare-and-swap expected and found.
type ConflictError struct {
	Ref             string
	Expected, Found Hash
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("ref %s: expected %s, found %s: %v", e.Ref, e.Expected.Short(), e.Found.Short(), ErrConflict)
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Unwrap() error { return ErrConflict }

func casRef(txn *badger.Txn, u RefUpdate) error {
	cur, _, err := getRef(txn, u.Name)
	if err != nil {
		return err
	}
	if cur != u.Old {
		return &ConflictError{Ref: u.Name, Expected: u.Old, Found: cur}
	}
	if u.New.IsZero() {
		err = txn.Delete(refKey(u.Name))
	} else {
		err = txn.Set(refKey(u.Name), append([]byte(nil), u.New[:]...))
	}
	if err != nil || u.Log == nil {
		return err
	}
	e := *u.Log
	e.Old, e.New = u.Old, u.New
	return appendReflog(txn, u.Name, e)
}

// UpdateRef moves one ref with compare-and-swap (see RefUpdate). It does not
// validate the name; prefer UpdateBranch and UpdateTag.
func (r *Repo) UpdateRef(u RefUpdate) error {
	return r.update(func(txn *badger.Txn) error { return casRef(txn, u) })
}

// UpdateBranch moves a branch with compare-and-swap, in one transaction
// with the zone's presence marker (written first if absent) and the reflog
// entry. If the repository has no HEAD yet, HEAD is pointed at this branch,
// as the zonegit tools expect of a new repository.
func (r *Repo) UpdateBranch(zone, branch string, old, next Hash, log *ReflogEntry) error {
	if err := ValidateZone(zone); err != nil {
		return err
	}
	if err := ValidateBranch(branch); err != nil {
		return err
	}
	name := BranchRef(zone, branch)
	return r.update(func(txn *badger.Txn) error {
		if !next.IsZero() {
			if err := ensureZone(txn, zone); err != nil {
				return err
			}
			if err := ensureHead(txn, name); err != nil {
				return err
			}
		}
		return casRef(txn, RefUpdate{Name: name, Old: old, New: next, Log: log})
	})
}

// UpdateTag moves a tag with compare-and-swap (zone marker first).
func (r *Repo) UpdateTag(zone, tag string, old, next Hash, log *ReflogEntry) error {
	if err := ValidateZone(zone); err != nil {
		return err
	}
	if err := ValidateTag(tag); err != nil {
		return err
	}
	return r.update(func(txn *badger.Txn) error {
		if !next.IsZero() {
			if err := ensureZone(txn, zone); err != nil {
				return err
			}
		}
		return casRef(txn, RefUpdate{Name: TagRef(zone, tag), Old: old, New: next, Log: log})
	})
}

func setHead(txn *badger.Txn, target string) error {
	payload := []byte(target)
	h := HashObject(KindSymref, payload)
	if err := txn.Set(objKey(h), encodeObjectValue(KindSymref, payload)); err != nil {
		return err
	}
	return txn.Set(refKey(HeadRef), append([]byte(nil), h[:]...))
}

func ensureHead(txn *badger.Txn, target string) error {
	_, ok, err := getRef(txn, HeadRef)
	if err != nil || ok {
		return err
	}
	return setHead(txn, target)
}

// SetHead stores a symref object naming target and points HEAD at it.
func (r *Repo) SetHead(target string) error {
	if _, err := DecodeSymref([]byte(target)); err != nil {
		return err
	}
	return r.update(func(txn *badger.Txn) error { return setHead(txn, target) })
}

// Head returns the ref path HEAD points at, or ErrNotFound.
func (r *Repo) Head() (string, error) {
	h, err := r.RefHash(HeadRef)
	if err != nil {
		return "", err
	}
	kind, payload, err := r.Get(h)
	if err != nil {
		return "", fmt.Errorf("HEAD: %w", err)
	}
	if kind != KindSymref {
		return "", fmt.Errorf("HEAD points at a %s, want a symref: %w", kind, ErrCorrupt)
	}
	return DecodeSymref(payload)
}

func appendReflog(txn *badger.Txn, name string, e ReflogEntry) error {
	if e.UnixTime == 0 {
		e.UnixTime = time.Now().Unix()
	}
	seq, err := nextReflogSeq(txn, name)
	if err != nil {
		return err
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return txn.Set(reflogKey(name, seq), v)
}

// nextReflogSeq is the number of existing entries (sequences are dense from
// 0), found by seeking to the last one rather than counting.
func nextReflogSeq(txn *badger.Txn, name string) (uint64, error) {
	p := []byte(reflogPrefix + name + "/")
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: p})
	defer it.Close()
	it.Seek(append(append([]byte(nil), p...), bytes.Repeat([]byte{0xff}, 9)...))
	for ; it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) == len(p)+8 {
			return binary.BigEndian.Uint64(k[len(p):]) + 1, nil
		}
	}
	return 0, nil
}

// AppendReflog appends one entry to a ref's reflog.
func (r *Repo) AppendReflog(name string, e ReflogEntry) error {
	return r.update(func(txn *badger.Txn) error { return appendReflog(txn, name, e) })
}

// Reflog returns a ref's reflog, oldest first.
func (r *Repo) Reflog(name string) ([]ReflogEntry, error) {
	var out []ReflogEntry
	err := r.view(func(txn *badger.Txn) error {
		p := []byte(reflogPrefix + name + "/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(it.Item().Key()) != len(p)+8 {
				continue
			}
			var e ReflogEntry
			err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) })
			if err != nil {
				return fmt.Errorf("reflog %s: %v: %w", name, err, ErrCorrupt)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// IsBranchRef reports whether name is under refs/heads/.
func IsBranchRef(name string) bool { return strings.HasPrefix(name, branchRefPrefix) }
