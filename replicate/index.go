package replicate

import (
	"hash/maphash"
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

// received is the pull's receipt set: every object this pull stored, with
// its kind and payload size, and whether a target was credited with it.
// Each entry was hash-verified (Batch.Put), kind-checked against the links
// that asked for it and decoded strictly (checkObject) before it was
// queued, so once the batch holding it has flushed and synced, an entry
// says all the closure check needs to know about an object that links
// nothing: it is local, it is sound, it is of this kind. The check trusts
// it for blobs (verify.go) instead of reading each one back.
//
// That trust needs a key no primary can make two objects share: a link to
// an object that was never sent must not find the entry of one that was.
// The first 8 bytes of a hash, which this set was once keyed by, are not
// such a key: a primary can find two objects whose hashes share them with
// ~2^32 hashes of work. Full hashes are (SHA-256), but cost 32 bytes a key
// (a 1M-record pull stores 2M objects: ~160 MiB of map rather than
// ~105 MiB). The key is 128 bits of hash/maphash under two random seeds
// made for this set, which the primary never sees: it cannot search
// offline for a pair that collides, it only ever controls the input
// through SHA-256 (any relation between two inputs it wants costs a
// birthday search on the hash), and two stored objects collide by chance
// with probability n^2/2^129 (2^-87 for 2M objects). A set's seeds live as
// long as the pull.
type received struct {
	m      map[receiptKey]uint32 // kindShift..: kind code; low bits: size; attributed
	s0, s1 maphash.Seed
}

type receiptKey struct{ a, b uint64 }

// A receipt packs an object's payload size (at most maxObjectBytes), its
// kind (kindCode, 3 bits) and the attributed flag into 32 bits.
const (
	sizeMask   = 1<<27 - 1
	kindShift  = 27
	kindMask   = 7 << kindShift
	attributed = 1 << 31 // counted for a branch already
)

// The size bits must hold maxObjectBytes.
var _ [sizeMask - maxObjectBytes]struct{}

func (r *received) key(h repo.Hash) receiptKey {
	if r.m == nil {
		r.m = map[receiptKey]uint32{}
		r.s0, r.s1 = maphash.MakeSeed(), maphash.MakeSeed()
	}
	return receiptKey{maphash.Comparable(r.s0, h), maphash.Comparable(r.s1, h)}
}

// has reports whether this pull stored h.
func (r *received) has(h repo.Hash) bool {
	if len(r.m) == 0 {
		return false
	}
	_, ok := r.m[r.key(h)]
	return ok
}

// kind returns the kind h was stored as, if this pull stored it.
func (r *received) kind(h repo.Hash) (repo.Kind, bool) {
	if len(r.m) == 0 {
		return "", false
	}
	v, ok := r.m[r.key(h)]
	if !ok {
		return "", false
	}
	return receiptKind(v), true
}

// add records a stored object and reports whether it is new to this pull.
func (r *received) add(h repo.Hash, kind repo.Kind, size int) bool {
	k := r.key(h)
	if _, ok := r.m[k]; ok {
		return false
	}
	r.m[k] = uint32(size)&sizeMask | uint32(kindCode(kind))<<kindShift
	return true
}

// credit marks h counted for a branch if this pull stored it and no branch
// was credited with it yet, and returns its payload size and its key (for
// uncredit).
func (r *received) credit(h repo.Hash) (size int, k receiptKey, ok bool) {
	if len(r.m) == 0 {
		return 0, k, false
	}
	k = r.key(h)
	v, found := r.m[k]
	if !found || v&attributed != 0 {
		return 0, k, false
	}
	r.m[k] = v | attributed
	return int(v & sizeMask), k, true
}

// uncredit takes back a credit.
func (r *received) uncredit(k receiptKey) { r.m[k] &^= attributed }

func receiptKind(v uint32) repo.Kind {
	return codeKind(uint8(v & kindMask >> kindShift))
}

// kindCode and codeKind number the kinds 1-5 (0: none).
func kindCode(k repo.Kind) uint8 {
	switch k {
	case repo.KindBlob:
		return 1
	case repo.KindTree:
		return 2
	case repo.KindCommit:
		return 3
	case repo.KindTag:
		return 4
	case repo.KindSymref:
		return 5
	}
	return 0
}

func codeKind(c uint8) repo.Kind {
	return [...]repo.Kind{"", repo.KindBlob, repo.KindTree, repo.KindCommit, repo.KindTag, repo.KindSymref, "", ""}[c&7]
}
