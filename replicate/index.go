package replicate

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
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
// for a small tree its payload. Each entry was hash-verified (repo.Verify),
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
// ~2^32 hashes of work. Full hashes are (SHA-256), but cost 32 bytes a key:
// a 1M-record pull stores 2M objects, ~160 MiB as a Go map. The key is
// 128 bits of hash/maphash under two random seeds made for this set, in a
// table of 20-byte slots (receiptTable: ~49 MB for 2M objects). The
// primary never
// sees the seeds or anything computed from them, so it cannot search
// offline for a pair that collides; it controls the input only through
// SHA-256, so any relation between two inputs a weakness of the keyed
// hash might need costs it a birthday search on SHA-256 over as many bits;
// and two objects collide by chance with probability n^2/2^129 (2^-87 for
// 2M objects). The seeds live as long as the pull.
type received struct {
	m       receiptTable // see the receipt bits below
	seeded  bool
	s0, s1  maphash.Seed
	lastH   repo.Hash // the last hash key was asked for, and its key
	lastK   receiptKey
	lastOK  bool
	hints   [maxFrameLinks]keyHint // keys of the links of the frame received last (each right for its hash, under these seeds)
	touched uint32                 // what touch read, kept so that its loads are made
	trees   treeArena
	noKeep  bool // keep no tree in the arena: the check should not need them (sealed)
	diffs   treeDiffs
	marks   walkMarks
	credit  keyList // the receipts credited to the target being checked (pending)
	wanted  int     // entries that are links a pack stream may still send (wantCode)
}

type receiptKey [16]byte

// A receipt packs into 32 bits (a map slot is then 20 bytes, not 24) an
// object's kind (Kind.Code, or keptTree: a tree kept in the arena), whether
// a target was credited with it (and whether that is the target being
// checked, which may still fail), whether the closure check's walk running
// now has marked it seen, and either its payload size or, for a kept tree,
// its offset in the arena (which holds its size). A size of bigSize bytes
// or more is stored as bigSize and read from the store when it is
// credited: 26 bits hold every arena offset, and one byte short of
// maxObjectBytes.
const (
	valueMask  = 1<<26 - 1
	bigSize    = valueMask
	pending    = 1 << 26 // credited to the target being checked (keyList credit)
	kindShift  = 27
	kindMask   = 7 << kindShift
	keptTree   = 6       // the kind code of a tree kept in the arena
	wantCode   = 7       // not a receipt: a link a pack stream may send, with its kindSet in the low bits
	seenMark   = 1 << 30 // marked seen by the walk running now (walkMarks)
	attributed = 1 << 31 // counted for a branch already
)

// The value bits must hold any arena offset.
var (
	_ [valueMask - maxTreeArena]struct{}
	_ [1<<16 - 1 - maxKeptTree]struct{} // the arena's 2-byte sizes
)

func (r *received) key(h repo.Hash) receiptKey {
	// The check looks each object up several times in a row (the walk's
	// marks, its credit, its kept payload): the last key is kept.
	if r.lastOK && r.lastH == h {
		return r.lastK
	}
	for i := range r.hints {
		if r.hints[i].ok && r.hints[i].h == h {
			r.lastH, r.lastK, r.lastOK = h, r.hints[i].k, true
			return r.lastK
		}
	}
	k := r.keyer().of(h)
	r.lastH, r.lastK, r.lastOK = h, k, true
	return k
}

// keyer returns the function of the pull's seeds that keys the receipts,
// making the seeds first. It may be used on any goroutine.
func (r *received) keyer() keyer {
	if !r.seeded {
		r.seeded = true
		r.s0, r.s1 = maphash.MakeSeed(), maphash.MakeSeed()
	}
	return keyer{r.s0, r.s1}
}

// keyer computes receipt keys (received.key) from a pull's seeds.
type keyer struct{ s0, s1 maphash.Seed }

func (ky keyer) of(h repo.Hash) receiptKey {
	var k receiptKey
	binary.LittleEndian.PutUint64(k[:8], maphash.Bytes(ky.s0, h[:]))
	binary.LittleEndian.PutUint64(k[8:], maphash.Bytes(ky.s1, h[:]))
	return k
}

// keyHint is a hash and its key, computed ahead (by the pack reader).
type keyHint struct {
	h  repo.Hash
	k  receiptKey
	ok bool
}

// hint makes key answer h with k (computed by keyer().of) without
// computing it again, as for the last key.
func (r *received) hint(h repo.Hash, k receiptKey) {
	r.lastH, r.lastK, r.lastOK = h, k, true
}

// has reports whether this pull stored h.
func (r *received) has(h repo.Hash) bool {
	if r.m.n == 0 {
		return false
	}
	v, ok := r.m.get(r.key(h))
	return ok && !isWanted(v)
}

// isWanted reports whether a value is a pack stream's link, not a receipt.
func isWanted(v uint32) bool { return receiptCode(v) == wantCode }

// kind returns the kind h was stored as, if this pull stored it.
func (r *received) kind(h repo.Hash) (repo.Kind, bool) {
	if r.m.n == 0 {
		return "", false
	}
	v, ok := r.m.get(r.key(h))
	if !ok || isWanted(v) {
		return "", false
	}
	return receiptKind(v), true
}

// receiptKind is the kind a receipt holds.
func receiptKind(v uint32) repo.Kind {
	if c := receiptCode(v); c != keptTree {
		return repo.KindOfCode(c)
	}
	return repo.KindTree
}

func receiptCode(v uint32) uint8 { return uint8(v & kindMask >> kindShift) }

// isKept reports whether a receipt's value is an offset in the arena.
func isKept(v uint32) bool { return receiptCode(v) == keptTree }

// tree returns the payload of tree h if this pull stored it and kept it.
// It is the arena's: only read it.
func (r *received) tree(h repo.Hash) ([]byte, bool) {
	if r.m.n == 0 {
		return nil, false
	}
	v, ok := r.m.get(r.key(h))
	if !ok || !isKept(v) {
		return nil, false
	}
	return r.trees.get(v & valueMask), true
}

// add records a stored object and reports whether it is new to this pull.
// A small tree's payload is kept (copied) while the arena has room. The
// receipt of an object a pack stream wanted takes the place of its link.
func (r *received) add(h repo.Hash, kind repo.Kind, payload []byte) bool {
	k := r.key(h)
	ref := r.m.ref(k)
	if ref != nil && !isWanted(*ref) {
		return false
	}
	off, ok := uint32(0), false
	if kind == repo.KindTree && !r.noKeep {
		off, ok = r.trees.put(payload)
	}
	v := uint32(kind.Code())<<kindShift | uint32(min(len(payload), bigSize))
	if ok {
		v = keptTree<<kindShift | off
	}
	if ref != nil {
		*ref = v
		r.wanted--
	} else {
		r.m.put(k, v)
	}
	return true
}

// reach looks h up for the closure check, once per object it reaches:
// the kind h was stored as (ok false: not by this pull), and whether this
// call credited it to the target being checked (first: this pull stored
// it and no target was credited with it yet), with its payload size (-1:
// bigSize or more, the caller reads it). The credit is pending until
// settle says whether the target keeps it.
func (r *received) reach(h repo.Hash) (kind repo.Kind, size int, first, ok bool) {
	if r.m.n == 0 {
		return "", 0, false, false
	}
	k := r.key(h)
	ref := r.m.ref(k)
	if ref == nil || isWanted(*ref) {
		return "", 0, false, false
	}
	v := *ref
	kind = receiptKind(v)
	if v&attributed != 0 {
		return kind, 0, false, true
	}
	*ref = v | attributed | pending
	r.credit.add(k)
	switch {
	case isKept(v):
		size = len(r.trees.get(v & valueMask))
	case v&valueMask == bigSize:
		size = -1
	default:
		size = int(v & valueMask)
	}
	return kind, size, true, true
}

// settle ends the pending credits: kept for a target whose closure is
// complete, taken back from one that is not (yet), for a later target or
// round to be credited with.
func (r *received) settle(keep bool) {
	bits := uint32(pending)
	if !keep {
		bits |= attributed
	}
	r.credit.clearBits(&r.m, pending, bits)
}

// keyList is the receipts given a bit that must be cleared later (walk
// marks, pending credits): their keys while few, else a pass over all the
// receipts clears the bit where it is set (costing about as much as the
// walk that set it more than maxKeyList times did). A full pull's check
// credits two million receipts; their keys were 32 MB.
type keyList struct {
	keys    []receiptKey
	overrun bool
}

const maxKeyList = 1 << 16

func (l *keyList) add(k receiptKey) {
	if len(l.keys) < maxKeyList {
		l.keys = append(l.keys, k)
	} else {
		l.overrun = true
	}
}

// clearBits clears bits in every receipt in the list, or in
// every receipt with the bit bit when it overran; then empties the list.
func (l *keyList) clearBits(m *receiptTable, bit, bits uint32) {
	if l.overrun {
		m.update(func(v uint32) uint32 {
			if v&bit != 0 {
				return v &^ bits
			}
			return v
		})
	} else {
		for _, k := range l.keys {
			if ref := m.ref(k); ref != nil {
				*ref &^= bits
			}
		}
	}
	l.keys, l.overrun = l.keys[:0], false
}

// The receipts also hold what a pack stream may still send (packState):
// the roots and the links of the objects received that are not received
// themselves, with the kinds those links allow. An object's link becomes
// its receipt when it comes, in the same map slot, so a full pull holds
// one entry per object, not a receipt each plus a link for half of them
// (the million name trees a flat zone's apex links) in a second map of
// full hashes; keyed as receipts are, for the same reason (a link must not
// find another object's entry).

// want makes h a link the stream may send as ks, unless it is received
// already (ok: it came as kind) or wanted (its kinds gain ks); added
// reports a new link.
func (r *received) want(h repo.Hash, ks kindSet) (kind repo.Kind, ok, added bool) {
	k := r.key(h)
	ref := r.m.ref(k)
	switch {
	case ref == nil:
		r.m.put(k, wantCode<<kindShift|uint32(ks))
		r.wanted++
		return "", false, true
	case isWanted(*ref):
		*ref |= uint32(ks)
		return "", false, false
	}
	return receiptKind(*ref), true, false
}

// setWanted makes h, not received, a link the stream may send as exactly
// ks (a root: the kinds a ref allows).
func (r *received) setWanted(h repo.Hash, ks kindSet) {
	k := r.key(h)
	v, found := r.m.get(k)
	switch {
	case !found:
		r.wanted++
	case !isWanted(v):
		return
	}
	r.m.put(k, wantCode<<kindShift|uint32(ks))
}

// wantedAs returns the kinds the stream may send h as (ok), or whether it
// was received already (dup).
func (r *received) wantedAs(h repo.Hash) (ks kindSet, ok, dup bool) {
	if r.m.n == 0 {
		return 0, false, false
	}
	v, found := r.m.get(r.key(h))
	switch {
	case !found:
		return 0, false, false
	case isWanted(v):
		return kindSet(v & anyKindBits), true, false
	}
	return 0, false, true
}

const anyKindBits = uint32(anyKind)

// dropWanted forgets the links no stream sent, when the streams are over:
// the closure check finds what they lack.
func (r *received) dropWanted() {
	if r.wanted == 0 {
		return
	}
	r.m.update(func(v uint32) uint32 {
		if isWanted(v) {
			return 0
		}
		return v
	})
	r.wanted = 0
}

// treeArena keeps the payloads of the small trees a pull stores, so the
// closure check reads each from memory instead of making a store lookup
// (a full pull of a flat zone stores one small tree per name, and the
// check needs every one's entries). It is bounded: trees beyond
// maxKeptTree bytes, and every tree once maxTreeArena bytes are kept, are
// read from the store as before. Each payload is kept after its size (2
// bytes), packed into chunks of at most arenaChunk bytes (a full one is
// never copied again); one never straddles two chunks.
type treeArena struct {
	chunks [][]byte
	used   int // arenaChunk for every chunk started
}

const (
	arenaChunk   = 1 << 20
	maxKeptTree  = 4 << 10
	maxTreeArena = 32 << 20
)

// put copies p into the arena and returns its offset, or false when it is
// too big or the arena is full.
func (a *treeArena) put(p []byte) (uint32, bool) {
	if len(p) > maxKeptTree {
		return 0, false
	}
	n := len(a.chunks)
	if n == 0 || len(a.chunks[n-1])+2+len(p) > arenaChunk {
		if a.used+arenaChunk > maxTreeArena {
			return 0, false
		}
		// A chunk starts small and grows (append) to arenaChunk: an
		// incremental pull keeps a tree or two, not a MiB.
		a.chunks = append(a.chunks, make([]byte, 0, min(arenaChunk, 4<<10)))
		a.used += arenaChunk
		n++
	}
	c := a.chunks[n-1]
	off := uint32((n-1)*arenaChunk + len(c))
	c = binary.LittleEndian.AppendUint16(c, uint16(len(p)))
	a.chunks[n-1] = append(c, p...)
	return off, true
}

// get returns the payload kept at off, capped so an append cannot run
// into the next one.
func (a *treeArena) get(off uint32) []byte {
	c := a.chunks[off/arenaChunk]
	o := int(off % arenaChunk)
	n := int(binary.LittleEndian.Uint16(c[o:]))
	return c[o+2 : o+2+n : o+2+n]
}

// walkMarks is the seen set of the closure check's walk running now
// (walk.Marks): a bit in the receipt of an object this pull stored, marked
// with the kind it was stored as, and a map for the rest (an object
// already local, or one marked with another kind than it came as, which
// the walk reports as a problem anyway). A full pull's check marks a
// million trees; a map of them beside the receipts was ~46 MB. The bits
// are cleared when the walk ends (clearMarks): the next target's walk starts
// with none.
type walkMarks struct {
	other map[repo.Hash]repo.Kind
	set   keyList // the receipts marked
}

// marked returns the kind h is marked seen with by the walk running now.
func (r *received) marked(h repo.Hash) (repo.Kind, bool) {
	if r.m.n > 0 {
		if v, ok := r.m.get(r.key(h)); ok && v&seenMark != 0 {
			return receiptKind(v), true
		}
	}
	k, ok := r.marks.other[h]
	return k, ok
}

// mark marks h seen as kind.
func (r *received) mark(h repo.Hash, kind repo.Kind) {
	if r.m.n > 0 {
		k := r.key(h)
		if ref := r.m.ref(k); ref != nil && receiptKind(*ref) == kind {
			if *ref&seenMark == 0 {
				*ref |= seenMark
				r.marks.set.add(k)
			}
			return
		}
	}
	if r.marks.other == nil {
		r.marks.other = map[repo.Hash]repo.Kind{}
	}
	r.marks.other[h] = kind
}

// clearMarks forgets every mark.
func (r *received) clearMarks() {
	r.marks.set.clearBits(&r.m, seenMark, seenMark)
	r.marks.other = nil
}

// treeDiffs keeps, for trees a pack stream brought, how each compared with
// the local tree it replaces (linkTree runs repo.DiffTree on it as it
// arrives), when few entries differ: the closure check's walk (a
// walk.Differ) takes that instead of reading both trees and comparing
// them again. One changed record in a flat zone of 100,000 names is 4 MB
// of apex tree compared with 4 MB of base, for one entry. Keyed by full
// hash: it is small, and a tree is found only under its own name.
type treeDiffs struct {
	m       map[repo.Hash]treeDiff
	entries int
}

type treeDiff struct {
	base    repo.Hash
	entries []walk.DiffEntry
}

// Bounds on what treeDiffs keeps: a tree with more differing entries is
// compared again (it costs little next to them), and past the total the
// rest are.
const (
	maxDiffEntries  = 64
	maxDiffsEntries = 1 << 16
)

// add records tree h's comparison with base, if it is small enough.
// es is the caller's; it is copied.
func (d *treeDiffs) add(h, base repo.Hash, es []walk.DiffEntry) {
	if len(es) > maxDiffEntries || d.entries+len(es) > maxDiffsEntries {
		return
	}
	if d.m == nil {
		d.m = map[repo.Hash]treeDiff{}
	}
	d.entries += len(es)
	d.m[h] = treeDiff{base: base, entries: slices.Clone(es)}
}

// get returns tree h's entries that differ from exactly bases, if known.
func (d *treeDiffs) get(h repo.Hash, bases []repo.Hash) ([]walk.DiffEntry, bool) {
	td, ok := d.m[h]
	if !ok || len(bases) != 1 || bases[0] != td.base {
		return nil, false
	}
	return td.entries, true
}

// touch loads the receipt slots the frames of a chunk will look up (their
// own, and their links'), before they are received one by one
// (receiptTable.touch).
func (r *received) touch(frames []packFrame) {
	var sink uint32
	for i := range frames {
		f := &frames[i]
		sink |= r.m.touch(f.key)
		for _, l := range f.links {
			if l.ok {
				sink |= r.m.touch(l.k)
			}
		}
	}
	r.touched = sink
}

// touchKeys loads the receipt slots of keys (receiptTable.touch).
func (r *received) touchKeys(keys []receiptKey) {
	var sink uint32
	for _, k := range keys {
		sink |= r.m.touch(k)
	}
	r.touched = sink
}
