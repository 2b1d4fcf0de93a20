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
// its kind and payload size, whether a target was credited with it, and
// for a small tree its payload. Each entry was hash-verified (Batch.Put),
// kind-checked against the links that asked for it and decoded strictly
// (checkObject) before it was queued, so once the batch holding it has
// flushed and synced, an entry says what the closure check would learn by
// reading the object back: it is local, sound, of this kind, and (a tree
// kept here) has these entries. The check trusts it (verify.go): a blob
// received is not read at all, a tree received and kept is read from here.
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
	m      map[receiptKey]uint64 // see the receipt bits below
	s0, s1 maphash.Seed
	trees  treeArena
}

type receiptKey struct{ a, b uint64 }

// A receipt packs an object's payload size (at most maxObjectBytes), its
// kind (kindCode, 3 bits), the attributed flag and, for a tree kept in
// the arena, 1 + its offset there into 64 bits (a map slot holds a 16-byte
// key and 8 bytes of value whether the value is 4 or 8 bytes).
const (
	sizeMask   = 1<<27 - 1
	kindShift  = 27
	kindMask   = 7 << kindShift
	attributed = 1 << 31 // counted for a branch already
	treeShift  = 32
)

// The size bits must hold maxObjectBytes.
var _ [sizeMask - maxObjectBytes]struct{}

func (r *received) key(h repo.Hash) receiptKey {
	if r.m == nil {
		r.m = map[receiptKey]uint64{}
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

// tree returns the payload of tree h if this pull stored it and kept it.
// It is the arena's: only read it.
func (r *received) tree(h repo.Hash) ([]byte, bool) {
	if len(r.m) == 0 {
		return nil, false
	}
	v, ok := r.m[r.key(h)]
	if !ok || v>>treeShift == 0 {
		return nil, false
	}
	return r.trees.get(v>>treeShift-1, int(v&sizeMask)), true
}

// add records a stored object and reports whether it is new to this pull.
// A small tree's payload is kept (copied) while the arena has room.
func (r *received) add(h repo.Hash, kind repo.Kind, payload []byte) bool {
	k := r.key(h)
	if _, ok := r.m[k]; ok {
		return false
	}
	v := uint64(len(payload))&sizeMask | uint64(kindCode(kind))<<kindShift
	if kind == repo.KindTree {
		if off, ok := r.trees.put(payload); ok {
			v |= (off + 1) << treeShift
		}
	}
	r.m[k] = v
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

// treeArena keeps the payloads of the small trees a pull stores, so the
// closure check reads each from memory instead of making a store lookup
// (a full pull of a flat zone stores one small tree per name, and the
// check needs every one's entries). It is bounded: trees beyond
// maxKeptTree bytes, and every tree once maxTreeArena bytes are kept, are
// read from the store as before. Payloads are packed into chunks
// allocated as needed (never a grown copy of a big slice), and one never
// straddles two chunks.
type treeArena struct {
	chunks [][]byte
	used   int // bytes kept, chunk waste included
}

const (
	arenaChunk   = 1 << 20
	maxKeptTree  = 4 << 10
	maxTreeArena = 32 << 20
)

// put copies p into the arena and returns its offset, or false when it is
// too big or the arena is full.
func (a *treeArena) put(p []byte) (uint64, bool) {
	if len(p) > maxKeptTree {
		return 0, false
	}
	n := len(a.chunks)
	if n == 0 || len(a.chunks[n-1])+len(p) > arenaChunk {
		if a.used+arenaChunk > maxTreeArena {
			return 0, false
		}
		a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
		a.used += arenaChunk
		n++
	}
	c := a.chunks[n-1]
	off := uint64(n-1)*arenaChunk + uint64(len(c))
	a.chunks[n-1] = append(c, p...)
	return off, true
}

// get returns the size bytes kept at off, capped so an append cannot run
// into the next payload.
func (a *treeArena) get(off uint64, size int) []byte {
	c := a.chunks[off/arenaChunk]
	o := int(off % arenaChunk)
	return c[o : o+size : o+size]
}

func receiptKind(v uint64) repo.Kind {
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
