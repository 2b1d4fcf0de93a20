package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// FsckProblem is one defect found by Fsck.
type FsckProblem struct {
	Ref    string // the ref whose closure reached the object
	Hash   Hash
	Kind   string // "missing", "hash mismatch", "undecodable", "wrong kind", "bad ref"
	Detail string
}

func (p FsckProblem) String() string {
	return fmt.Sprintf("%s %s (from %s): %s", p.Kind, p.Hash, p.Ref, p.Detail)
}

// FsckReport summarises a repository check.
type FsckReport struct {
	Refs        int // refs whose closure was walked (branches, tags, HEAD)
	Objects     int // objects reached
	Stored      int // objects in the store
	Unreachable int // stored objects no ref reaches (informational: the zonegit tools leave such objects behind)
	Problems    []FsckProblem
}

// OK reports whether the repository is sound.
func (f *FsckReport) OK() bool { return len(f.Problems) == 0 }

// maxFsckProblems bounds the report: a badly damaged repository would
// otherwise produce one problem per object.
const maxFsckProblems = 1000

// Fsck walks the closure of every branch, tag and HEAD (through its symref
// object) and verifies every object reached: it is present, its stored
// value has a known kind prefix, it re-hashes to its key and it decodes
// strictly (blobs included). Every edge is checked against the kind its
// referrer expects, not only the first edge that reaches an object: a
// branch names a commit, a tag ref a commit (or a tag object), a commit's
// tree is a tree and its parents commits, a subtree entry names a tree, a
// leaf entry a blob, a tag object a commit, HEAD a symref. Zone markers
// must hold the exact sentinel, and every table's block checksums must
// match. It also counts stored objects that no ref reaches; those are
// normal (the zonegit tools leave old trees and symrefs behind) and are not
// problems. Everything is read in one consistent snapshot.
//
// Longer than 80 lines on purpose: one pass over refs, then the closure
// walk with its per-edge kind checks, in one read transaction; the checks
// themselves are helpers.
func (r *Repo) Fsck(ctx context.Context) (*FsckReport, error) {
	rep := &FsckReport{}
	if err := r.read(r.db.VerifyChecksum); err != nil {
		var de *DamageError
		if errors.As(err, &de) {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		rep.add(FsckProblem{Kind: "damaged table", Detail: err.Error()})
	}
	err := r.view(func(txn *badger.Txn) error {
		type root struct {
			ref  string
			hash Hash
			want Kind
		}
		var roots []root
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(refPrefix)})
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(refPrefix):])
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return fmt.Errorf("ref %s: %w", name, err)
			}
			var h Hash
			if len(v) != len(h) {
				rep.add(FsckProblem{Ref: name, Kind: "bad ref", Detail: fmt.Sprintf("value of %d bytes, want 32", len(v))})
				continue
			}
			copy(h[:], v)
			switch {
			case name == HeadRef:
				roots = append(roots, root{name, h, KindSymref})
			case strings.HasPrefix(name, branchRefPrefix):
				roots = append(roots, root{name, h, KindCommit})
			case strings.HasPrefix(name, tagRefPrefix):
				// A tag ref names a commit today; an annotated tag object
				// is allowed too.
				roots = append(roots, root{name, h, ""})
			case strings.HasPrefix(name, zoneRefPrefix):
				if h != ZoneMarker {
					rep.add(FsckProblem{Ref: name, Hash: h, Kind: "bad ref", Detail: "zone marker does not hold the zonegit sentinel"})
				}
			}
		}
		it.Close()
		rep.Refs = len(roots)

		// kinds records what each object reached turned out to be ("" when
		// it is missing or unreadable), so that every later edge to it is
		// checked against the kind that edge expects.
		kinds := make(map[Hash]Kind)
		var stack []fsckItem
		for _, rt := range roots {
			stack = append(stack[:0], fsckItem{rt.hash, rt.want, "ref " + rt.ref})
			for len(stack) > 0 {
				cur := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if got, seen := kinds[cur.hash]; seen {
					if got != "" && !kindFits(got, cur.want) {
						rep.add(wrongKind(rt.ref, cur.hash, got, cur.want, cur.from))
					}
					continue
				}
				rep.Objects++
				if rep.Objects&4095 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				kind, links, err := r.fsckObject(txn, rep, rt.ref, cur.hash, cur.want, cur.from)
				if err != nil {
					return err
				}
				kinds[cur.hash] = kind
				for _, l := range links {
					stack = append(stack, fsckItem{l.Hash, l.Kind, cur.name()})
				}
			}
		}

		// Unreachable objects: keys only, no values read.
		oit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(objPrefix)})
		defer oit.Close()
		for oit.Rewind(); oit.Valid(); oit.Next() {
			k := oit.Item().Key()
			rep.Stored++
			var h Hash
			if len(k) != len(objPrefix)+len(h) {
				rep.add(FsckProblem{Kind: "bad key", Detail: fmt.Sprintf("object key %x has %d bytes, want 34", clipBytes(k), len(k))})
				continue
			}
			copy(h[:], k[len(objPrefix):])
			if _, ok := kinds[h]; !ok {
				rep.Unreachable++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	return rep, nil
}

// kindFits reports whether an object of kind got may stand where want is
// expected ("" under a tag ref: a commit or a tag object).
func kindFits(got, want Kind) bool {
	if want == "" {
		return got == KindCommit || got == KindTag
	}
	return got == want
}

func wrongKind(ref string, h Hash, got, want Kind, from string) FsckProblem {
	w := string(want)
	if w == "" {
		w = "commit or tag"
	}
	return FsckProblem{Ref: ref, Hash: h, Kind: "wrong kind", Detail: fmt.Sprintf("is a %s, %s expects a %s", got, from, w)}
}

// fsckItem is an object to check, with the kind its parent expects
// ("" under a tag ref: a commit or a tag) and who referenced it.
type fsckItem struct {
	hash Hash
	want Kind
	from string
}

// name describes the item as the parent of its children.
func (it fsckItem) name() string {
	if it.want == "" {
		return "object " + it.hash.Short()
	}
	return string(it.want) + " " + it.hash.Short()
}

func (f *FsckReport) add(p FsckProblem) {
	if len(f.Problems) < maxFsckProblems {
		f.Problems = append(f.Problems, p)
	}
}

// fsckObject checks one object and returns its kind ("" if it is missing
// or unreadable) and its links to walk. Problems go into the report; only
// storage failures are returned as errors.
func (r *Repo) fsckObject(txn *badger.Txn, rep *FsckReport, ref string, h Hash, want Kind, from string) (Kind, []Link, error) {
	item, err := txn.Get(objKey(h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		rep.add(FsckProblem{Ref: ref, Hash: h, Kind: "missing", Detail: "referenced by " + from})
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read object %s: %w", h, err)
	}
	var kind Kind
	var links []Link
	var prob *FsckProblem
	err = item.Value(func(v []byte) error {
		kind, links, prob = checkObjectValue(h, v, want, from)
		return nil
	})
	if prob != nil {
		prob.Ref = ref
		rep.add(*prob)
	}
	return kind, links, err
}

// checkObjectValue verifies one stored value: kind prefix, hash, the kind
// the referrer expects, strict decoding. It returns the object's kind (""
// if that cannot be trusted) and links, or the problem found. A wrong kind
// is still walked as what it is, so what it reaches is checked too.
func checkObjectValue(h Hash, v []byte, want Kind, from string) (Kind, []Link, *FsckProblem) {
	kind, payload, err := decodeObjectValue(h, v)
	if err != nil {
		return "", nil, &FsckProblem{Hash: h, Kind: "undecodable", Detail: err.Error()}
	}
	if got := HashObject(kind, payload); got != h {
		return "", nil, &FsckProblem{Hash: h, Kind: "hash mismatch",
			Detail: fmt.Sprintf("stored %s of %d bytes hashes to %s", kind, len(payload), got)}
	}
	// Links decodes trees, commits and tags strictly; Validate covers the
	// kinds without links (blobs are decoded too).
	var links []Link
	if kind == KindBlob || kind == KindSymref {
		err = Validate(kind, payload)
	} else {
		links, err = Links(kind, payload)
	}
	if err != nil {
		return kind, nil, &FsckProblem{Hash: h, Kind: "undecodable", Detail: fmt.Sprintf("%s: %v", kind, err)}
	}
	if !kindFits(kind, want) {
		p := wrongKind("", h, kind, want, from)
		return kind, links, &p
	}
	return kind, links, nil
}

func clipBytes(b []byte) []byte {
	if len(b) > 40 {
		return bytes.Clone(b[:40])
	}
	return b
}
