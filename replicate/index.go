package replicate

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Per-object state flags in objIndex.
const (
	flagLocal   uint8 = 1 << iota // present locally before this pull
	flagFetched                   // received, verified and queued in the batch
	flagFailed                    // could not be fetched or failed verification
	flagChecked                   // its links were checked
	flagClaims                    // a tree with children outside the index
)

// kindCodes packs kinds into a byte per object.
var kindCodes = map[repo.Kind]uint8{repo.KindBlob: 1, repo.KindTree: 2, repo.KindCommit: 3, repo.KindTag: 4, repo.KindSymref: 5}
var codeKinds = [...]repo.Kind{"", repo.KindBlob, repo.KindTree, repo.KindCommit, repo.KindTag, repo.KindSymref}

// objIndex is the set of objects one pull deals with: the walk's missing
// hashes (sorted, looked up by a 16-bit bucket table then binary search)
// plus a small overflow of objects discovered later. Per-object state lives
// in parallel byte/int arrays so a 2M-object pull costs ~90 MB, not the
// several hundred a map of structs would. A pull over the pack extension
// only indexes what its stream left out (usually nothing).
type objIndex struct {
	hashes  []repo.Hash
	nSorted int
	starts  []int32 // bucket b (first two bytes) is hashes[starts[b]:starts[b+1]]
	extra   map[repo.Hash]int32

	flags  []uint8
	kind   []uint8 // actual kind, once known
	want   []uint8 // kind a parent's link requires, once known
	parent []int32 // first parent that linked it (-1: none), for attribution
	owner  []int32 // item whose closure it was first reached from (-1: see parent)
	size   []uint32
}

func hashCmp(a, b repo.Hash) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	return bytes.Compare(a[8:], b[8:])
}

// newObjIndex takes ownership of hs, sorts and dedups it.
func newObjIndex(hs []repo.Hash) *objIndex {
	slices.SortFunc(hs, hashCmp)
	hs = slices.Compact(hs)
	x := &objIndex{hashes: hs, nSorted: len(hs), extra: map[repo.Hash]int32{}}
	x.starts = make([]int32, 1<<16+1)
	j := 0
	for b := 0; b < 1<<16; b++ {
		x.starts[b] = int32(j)
		for j < len(hs) && int(hs[j][0])<<8|int(hs[j][1]) == b {
			j++
		}
	}
	x.starts[1<<16] = int32(len(hs))
	n := len(hs)
	x.flags = make([]uint8, n)
	x.kind = make([]uint8, n)
	x.want = make([]uint8, n)
	x.size = make([]uint32, n)
	x.parent = make([]int32, n)
	x.owner = make([]int32, n)
	for i := range x.parent {
		x.parent[i] = -1
		x.owner[i] = -1
	}
	return x
}

func (x *objIndex) len() int { return len(x.hashes) }

func (x *objIndex) find(h repo.Hash) (int, bool) {
	b := int(h[0])<<8 | int(h[1])
	lo, hi := int(x.starts[b]), int(x.starts[b+1])
	if i, ok := slices.BinarySearchFunc(x.hashes[lo:hi], h, hashCmp); ok {
		return lo + i, true
	}
	if i, ok := x.extra[h]; ok {
		return int(i), true
	}
	return -1, false
}

// add appends an object discovered after the walk (a child the walk did
// not list, or a root) and returns its index.
func (x *objIndex) add(h repo.Hash) int {
	if i, ok := x.find(h); ok {
		return i
	}
	i := len(x.hashes)
	x.hashes = append(x.hashes, h)
	x.extra[h] = int32(i)
	x.flags = append(x.flags, 0)
	x.kind = append(x.kind, 0)
	x.want = append(x.want, 0)
	x.size = append(x.size, 0)
	x.parent = append(x.parent, -1)
	x.owner = append(x.owner, -1)
	return i
}
