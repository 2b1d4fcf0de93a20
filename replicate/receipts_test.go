package replicate

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// twin returns h with every byte from n on flipped: a hash that shares
// exactly its first n bytes with h, as a primary can craft for small n.
func twin(h repo.Hash, n int) repo.Hash {
	for i := n; i < len(h); i++ {
		h[i] ^= 0xff
	}
	return h
}

// TestReceiptSetKeys: the receipt set tells apart hashes that share their
// first 8, 16 or 31 bytes (a prefix-keyed set would take a link to a
// crafted twin for the object received), and keeps what the closure check
// trusts: the kind an object came as, its size, a credit given once, and
// a small tree's exact payload.
func TestReceiptSetKeys(t *testing.T) {
	var r received
	blob := []byte("\x01\x03www\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x00")
	h := repo.HashObject(repo.KindBlob, blob)
	if r.has(h) {
		t.Fatal("an empty set has an object")
	}
	if !r.add(h, repo.KindBlob, blob) || r.add(h, repo.KindBlob, blob) {
		t.Fatal("add does not tell a new object from a repeat")
	}
	for _, n := range []int{8, 16, 31} {
		tw := twin(h, n)
		if !bytes.Equal(tw[:n], h[:n]) || tw[n] == h[n] {
			t.Fatalf("twin %d is wrong", n)
		}
		if r.has(tw) {
			t.Errorf("a hash sharing only its first %d bytes with a received object counts as received", n)
		}
		if _, ok := r.kind(tw); ok {
			t.Errorf("a hash sharing only its first %d bytes has a kind", n)
		}
		if _, _, first, ok := r.reach(tw); ok || first {
			t.Errorf("a hash sharing only its first %d bytes can be credited", n)
		}
	}
	if k, ok := r.kind(h); !ok || k != repo.KindBlob {
		t.Fatalf("kind = %q, %v", k, ok)
	}
	if _, ok := r.tree(h); ok {
		t.Fatal("a blob is kept as a tree")
	}
	kind, size, first, ok := r.reach(h)
	if !ok || !first || kind != repo.KindBlob || size != len(blob) {
		t.Fatalf("reach = %q, %d, %v, %v", kind, size, first, ok)
	}
	if _, _, again, ok := r.reach(h); again || !ok {
		t.Fatal("credited twice")
	}
	r.settle(false)
	if _, _, first, _ := r.reach(h); !first {
		t.Fatal("not credited again after the target failed")
	}
	r.settle(true)
	if _, _, first, _ := r.reach(h); first {
		t.Fatal("credited again after a target kept it")
	}

	// Trees: kept exactly, up to maxKeptTree bytes, while the arena has
	// room; a tree not kept is still received, with its size.
	var small []repo.Hash
	for i := 0; ; i++ {
		p := bytes.Repeat([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, 1000) // 3000 bytes
		th := repo.HashObject(repo.KindTree, p)
		r.add(th, repo.KindTree, p)
		kept, ok := r.tree(th)
		if !ok {
			if r.trees.used+arenaChunk <= maxTreeArena {
				t.Fatalf("tree %d not kept with %d bytes of the arena used", i, r.trees.used)
			}
			if k, ok := r.kind(th); !ok || k != repo.KindTree {
				t.Fatal("a tree not kept is not received")
			}
			if _, size, _, ok := r.reach(th); !ok || size != len(p) {
				t.Fatalf("a tree not kept: size %d", size)
			}
			break
		}
		if !bytes.Equal(kept, p) || cap(kept) != len(p) {
			t.Fatalf("tree %d kept as %d bytes (cap %d), not its payload", i, len(kept), cap(kept))
		}
		if _, size, _, _ := r.reach(th); size != len(p) {
			t.Fatalf("kept tree %d has size %d, want %d", i, size, len(p))
		}
		small = append(small, th)
	}
	// Earlier trees are intact after the arena filled.
	for i, th := range small {
		p := bytes.Repeat([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, 1000)
		if kept, _ := r.tree(th); !bytes.Equal(kept, p) {
			t.Fatalf("tree %d changed once others were kept", i)
		}
	}
	big := bytes.Repeat([]byte{7}, maxKeptTree+1)
	bh := repo.HashObject(repo.KindTree, big)
	r.add(bh, repo.KindTree, big)
	if _, ok := r.tree(bh); ok {
		t.Fatal("a tree over maxKeptTree is kept")
	}
}

// TestReceiptBitsCleared: the bits a closure check sets in receipts for
// one target (pending credits, its walk's seen marks) are cleared for the
// next, by their list when few and by a pass over every receipt when more
// than maxKeyList were set; a failed target's credits are taken back and a
// complete one's kept, either way; an object marked with another kind
// than it came as, or not received, is marked apart; a size of bigSize
// bytes or more is left to the caller to read.
func TestReceiptBitsCleared(t *testing.T) {
	for _, n := range []int{3, maxKeyList + 5} {
		var r received
		hs := make([]repo.Hash, n)
		for i := range hs {
			hs[i] = repo.HashObject(repo.KindTree, []byte{byte(i), byte(i >> 8), byte(i >> 16)})
			r.add(hs[i], repo.KindTree, []byte{byte(i), byte(i >> 8), byte(i >> 16)})
		}
		for _, keep := range []bool{false, true} {
			for _, h := range hs {
				if _, _, first, ok := r.reach(h); !first || !ok {
					t.Fatalf("n=%d keep=%v: not credited", n, keep)
				}
			}
			r.settle(keep)
			for _, h := range hs[:2] {
				if _, _, first, _ := r.reach(h); first == keep {
					t.Fatalf("n=%d: credited again = %v after settle(%v)", n, first, keep)
				}
			}
			r.settle(false)
		}
		if r.credit.overrun || len(r.credit.keys) != 0 {
			t.Fatalf("n=%d: pending credits left: %d", n, len(r.credit.keys))
		}
		for round := 0; round < 2; round++ {
			for _, h := range hs {
				if _, ok := r.marked(h); ok {
					t.Fatalf("n=%d round %d: marked before the walk", n, round)
				}
				r.mark(h, repo.KindTree)
				if k, ok := r.marked(h); !ok || k != repo.KindTree {
					t.Fatalf("n=%d: marked %q, %v", n, k, ok)
				}
			}
			r.clearMarks()
		}
		// Another kind than the receipt's, or no receipt: marked apart.
		other := repo.HashObject(repo.KindBlob, []byte("x"))
		r.mark(hs[0], repo.KindBlob)
		r.mark(other, repo.KindCommit)
		if k, ok := r.marked(hs[0]); !ok || k != repo.KindBlob {
			t.Fatalf("n=%d: a tree marked as a blob is marked %q, %v", n, k, ok)
		}
		if k, ok := r.marked(other); !ok || k != repo.KindCommit {
			t.Fatalf("n=%d: an object not received is marked %q, %v", n, k, ok)
		}
		if r.has(other) {
			t.Fatal("marking an object makes it received")
		}
		r.clearMarks()
		if _, ok := r.marked(hs[0]); ok {
			t.Fatal("a mark apart outlived the walk")
		}
	}
	var r received
	big := bigSize + 10
	h := repo.HashObject(repo.KindBlob, make([]byte, big))
	r.add(h, repo.KindBlob, make([]byte, big))
	if _, size, first, _ := r.reach(h); !first || size != -1 {
		t.Fatalf("a blob of %d bytes: size %d", big, size)
	}
}

// TestClosureCheckTrustsReceipts: TestClosureCheckRounds's random
// scenarios, with most new objects received by the pull (in its receipt
// set, so the check does not read blobs and reads kept trees from memory)
// and the rest already local before it (left by a killed pull: read from
// the store as before). For every object withheld, the receipt set holds
// twins sharing its first 8 or 16 bytes (of a tree or a blob): the check
// still asks for exactly the withheld objects, fails every planted bad
// link or blob, and calls a target complete only when its whole closure is
// stored.
func TestClosureCheckTrustsReceipts(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	plants := []string{"", "", "leaf at a tree", "subtree at a blob", "undecodable blob"}
	trusted, preexisting := 0, 0
	for iter := 0; iter < 300; iter++ {
		plant := plants[iter%len(plants)]
		s := newCheckScenario(t, r, plant)
		p := &puller{c: &Client{Local: s.local}, ctx: context.Background(), got: received{},
			expect: map[repo.Hash]kindSet{}, failed: map[repo.Hash]fetchFailure{}, actual: map[repo.Hash]repo.Kind{}}
		old := s.closure(s.known)
		for h := range s.closure(s.target) {
			switch {
			case old[h]:
			case s.withheld[h]:
				for _, n := range []int{8, 16} {
					k := []repo.Kind{repo.KindBlob, repo.KindTree}[r.IntN(2)]
					p.got.add(twin(h, n), k, s.objs[h])
				}
			case r.IntN(4) == 0 || decodeObject(h, s.kinds[h], s.objs[h]) != nil:
				// Stored, not received: a pull never records an object
				// that does not decode (checkObject refuses it first).
				preexisting++
			default:
				p.got.add(h, s.kinds[h], s.objs[h])
				trusted++
			}
		}
		s.decide(t, p, iter, plant, func(h repo.Hash) {
			if decodeObject(h, s.kinds[h], s.objs[h]) == nil {
				p.got.add(h, s.kinds[h], s.objs[h]) // received in this round
			}
		})
	}
	if trusted == 0 || preexisting == 0 {
		t.Fatalf("%d objects received, %d already local: the scenarios do not cover both", trusted, preexisting)
	}
}

// TestReceiveKeepsTreeDiffs: a pack stream of one changed record arrives
// over a replica holding the previous version; receive compares the new
// apex and name trees with the ones they replace, and keeps those
// comparisons (exactly repo.DiffTree's) for the closure check's walk,
// which then finds the target complete and credits it with the four new
// objects.
func TestReceiveKeepsTreeDiffs(t *testing.T) {
	primary, local := repotest.MemRepo(t), repotest.MemRepo(t)
	c0 := must(repotest.SyntheticZone(primary, "example.com.", "main", 300))(t)
	if l0 := must(repotest.SyntheticZone(local, "example.com.", "main", 300))(t); l0 != c0 {
		t.Fatal("the synthetic zone is not the same twice")
	}
	c1 := must(repotest.SetA(primary, "example.com.", "main", []string{"h150"}, 60, [4]byte{192, 0, 2, 1}))(t)
	batch, err := local.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	p := &puller{c: &Client{Local: local}, local: local, ctx: context.Background(), batch: batch, got: received{},
		expect: map[repo.Hash]kindSet{}, failed: map[repo.Hash]fetchFailure{}, actual: map[repo.Hash]repo.Kind{},
		pack: &packState{bases: map[repo.Hash]repo.Hash{}}}
	p.got.setWanted(c1, setCommit)
	var trees []repo.Hash
	_, err = walk.Missing(primary, []repo.Hash{c1}, []repo.Hash{c0}, walk.Options{}, func(h repo.Hash, kind repo.Kind, payload []byte) error {
		if payload == nil {
			if kind, payload, err = primary.Get(h); err != nil {
				return err
			}
		}
		if kind == repo.KindTree {
			trees = append(trees, h)
		}
		return p.receive(h, kind, payload)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.batch.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(trees) != 2 || len(p.got.diffs.m) != 2 {
		t.Fatalf("%d trees received, %d comparisons kept; want 2 and 2", len(trees), len(p.got.diffs.m))
	}
	for _, h := range trees {
		td := p.got.diffs.m[h]
		_, np, err := primary.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		_, bp, err := local.Get(td.base)
		if err != nil {
			t.Fatalf("tree %s kept with base %s, which the replica lacks: %v", h.Short(), td.base.Short(), err)
		}
		var want []walk.DiffEntry
		if err := repo.DiffTree(h, np, [][]byte{bp}, func(kind repo.EntryKind, eh repo.Hash, same []repo.Hash) error {
			want = append(want, walk.DiffEntry{Kind: kind, Hash: eh, Same: slices.Clone(same)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(td.entries, want) || len(want) != 1 {
			t.Errorf("tree %s: kept %v, DiffTree says %v", h.Short(), td.entries, want)
		}
		if _, ok := p.got.diffs.get(h, []repo.Hash{td.base, td.base}); ok {
			t.Errorf("tree %s: a comparison with one base answers for two", h.Short())
		}
	}
	it := &item{new: c1, needs: true, res: BranchResult{Zone: "example.com.", Name: "main"}}
	need, err := p.checkClosures([]*item{it}, map[string][]repo.Hash{"example.com.": {c0}}, map[repo.Hash]kindSet{})
	if err != nil || len(need) != 0 || !it.checked || it.res.Err != nil {
		t.Fatalf("check: need %v, checked %v, %v, %v", need, it.checked, it.res.Err, err)
	}
	if it.res.Objects != 4 {
		t.Errorf("credited %d objects, want 4 (commit, apex, name tree, blob)", it.res.Objects)
	}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestReceiveChecksLinksToReceived: a pack stream sends a blob (linked as
// a leaf), then a tree linking the same blob as a subtree. The receipt
// says what the blob is, so receive refuses the link there: the stream
// stops with a wrong-kind error naming both, and the tree, which is
// intact, is stored and received (the closure check fails the targets
// that reach the wrong link).
func TestReceiveChecksLinksToReceived(t *testing.T) {
	local := repotest.MemRepo(t)
	batch, err := local.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	blobP, err := (&repo.Blob{Owner: "a.example.com.", Class: 1, Type: 1, TTL: 60, RData: [][]byte{{192, 0, 2, 1}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	blob := repo.HashObject(repo.KindBlob, blobP)
	obj := func(es ...repo.TreeEntry) (repo.Hash, []byte) {
		p := encode(t, sortEntries(es))
		return repo.HashObject(repo.KindTree, p), p
	}
	a, ap := obj(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: blob})
	b, bp := obj(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "x", Hash: blob})
	root, rp := obj(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: a}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "b", Hash: b})
	p := &puller{c: &Client{Local: local}, local: local, ctx: context.Background(), batch: batch, got: received{},
		actual: map[repo.Hash]repo.Kind{},
		pack:   &packState{bases: map[repo.Hash]repo.Hash{}}}
	p.got.setWanted(root, setTree)
	for _, o := range []struct {
		h    repo.Hash
		kind repo.Kind
		p    []byte
	}{{root, repo.KindTree, rp}, {a, repo.KindTree, ap}, {blob, repo.KindBlob, blobP}} {
		if err := p.receive(o.h, o.kind, o.p); err != nil {
			t.Fatalf("%s: %v", o.h.Short(), err)
		}
	}
	err = p.receive(b, repo.KindTree, bp)
	if !errors.Is(err, errWrongKind) || !strings.Contains(err.Error(), blob.String()) || !strings.Contains(err.Error(), b.String()) {
		t.Fatalf("a subtree link to a blob received: %v", err)
	}
	if k, ok := p.got.kind(b); !ok || k != repo.KindTree {
		t.Fatalf("the linking tree is not received (%q, %v)", k, ok)
	}
	if _, wanted, _ := p.got.wantedAs(blob); wanted {
		t.Fatal("the blob received is wanted again")
	}
}
