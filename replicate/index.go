package replicate

import (
	"encoding/binary"
	"strings"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// kindSet is the kinds an object may have: those the links to it allow (a
// tree entry names a tree or a blob, a commit's tree is a tree, its parents
// are commits, a branch points at a commit). A transport accepts an object
// only with a kind some link to it allows. Two links that disagree (one
// tree names it as a subtree, another as a leaf, or a branch points at
// what is also a tree) do not make it unusable for the link that is right:
// it is accepted as either, and the closure check, which compares every
// link with what the object is, fails exactly the targets whose links are
// wrong.
type kindSet uint8

const (
	setBlob kindSet = 1 << iota
	setTree
	setCommit
	setTag
	setSymref

	anyKind = setBlob | setTree | setCommit | setTag | setSymref
)

func kindBit(k repo.Kind) kindSet {
	switch k {
	case repo.KindBlob:
		return setBlob
	case repo.KindTree:
		return setTree
	case repo.KindCommit:
		return setCommit
	case repo.KindTag:
		return setTag
	case repo.KindSymref:
		return setSymref
	}
	return 0
}

func (s kindSet) has(k repo.Kind) bool { return s&kindBit(k) != 0 }

// String names the set for error messages: "a commit or a tag".
func (s kindSet) String() string {
	if s == 0 {
		return "nothing (its links disagree on its kind)"
	}
	var names []string
	for _, k := range []repo.Kind{repo.KindBlob, repo.KindTree, repo.KindCommit, repo.KindTag, repo.KindSymref} {
		if s.has(k) {
			names = append(names, "a "+string(k))
		}
	}
	return strings.Join(names, " or ")
}

// received remembers the objects this pull stored, for counting each once
// and telling a duplicate frame from a new object. It is keyed by the
// first 8 bytes of the hash, so a million-object pull costs ~20 MB rather
// than the ~50 MB of full hashes. Nothing that keeps a replica sound
// depends on it: the closure check reads the store itself. A prefix shared
// by two objects (a primary can craft one) at worst makes a stream stop
// early or an object count for the wrong branch.
type received map[uint64]uint32

// attributed marks an object already counted for a branch; the low bits
// hold its payload size (at most maxObjectBytes).
const attributed = 1 << 31

func prefix(h repo.Hash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

func (r received) has(h repo.Hash) bool {
	_, ok := r[prefix(h)]
	return ok
}

// add records a stored object and reports whether it is new to this pull.
func (r received) add(h repo.Hash, size int) bool {
	k := prefix(h)
	if _, ok := r[k]; ok {
		return false
	}
	r[k] = uint32(size)
	return true
}
