package replicate

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// refVerifyClaims is puller.verifyClaims as it was before it skipped
// identical runs (a plain merge with the known tree, the index consulted
// before the known tree's vouching), kept to check that skipping adds the
// same objects to the index.
func refVerifyClaims(p *puller, known map[repo.Hash]bool) (int, error) {
	x := p.idx
	claims := p.claimed
	p.claimed = nil
	added := 0
	err := p.c.Local.View(func(r repo.Reader) error {
		lookup := func(h repo.Hash, want repo.Kind, parent int) error {
			if _, ok := x.find(h); ok {
				return nil
			}
			has, err := r.Has(h)
			if err != nil || has {
				return err
			}
			j := x.add(h)
			x.want[j] = kindCodes[want]
			x.parent[j] = int32(parent)
			added++
			return nil
		}
		// Pair fetched root trees with the trees of known parent commits.
		type pair struct {
			fetched int
			known   repo.Hash
		}
		var work []pair
		var history *knownHistory
		for _, cl := range claims {
			if codeKinds[x.kind[cl.parent]] != repo.KindCommit || cl.want != repo.KindCommit {
				continue
			}
			_, payload, err := r.Get(x.hashes[cl.parent])
			if err != nil {
				return err
			}
			c, err := repo.DecodeCommit(payload)
			if err != nil {
				continue
			}
			ti, ok := x.find(c.Tree)
			if !ok || x.flags[ti]&flagClaims == 0 {
				continue
			}
			if history == nil {
				history = newKnownHistory(r, known)
			}
			if !history.has(cl.h) {
				continue
			}
			_, pp, err := r.Get(cl.h)
			if err != nil {
				continue
			}
			if pc, err := repo.DecodeCommit(pp); err == nil {
				work = append(work, pair{ti, pc.Tree})
			}
		}
		// Merge-join each fetched tree with its known counterpart; descend
		// into fetched subtrees that replace a known subtree of the same name.
		for len(work) > 0 {
			w := work[len(work)-1]
			work = work[:len(work)-1]
			if x.flags[w.fetched]&flagClaims == 0 {
				continue // done already
			}
			_, np, err := r.Get(x.hashes[w.fetched])
			if err != nil {
				return err
			}
			_, kp, err := r.Get(w.known)
			if err != nil {
				continue // not local after all: checked entry by entry below
			}
			nt, err1 := newTreeIter(x.hashes[w.fetched], np)
			kt, err2 := newTreeIter(w.known, kp)
			if err1 != nil || err2 != nil {
				continue
			}
			kok := kt.next()
			for nt.next() {
				for kok && entryCmp(kt.kind, kt.name, nt.kind, nt.name) < 0 {
					kok = kt.next()
				}
				same := kok && kt.kind == nt.kind && string(kt.name) == string(nt.name)
				h := repo.Hash(nt.hash)
				if j, in := x.find(h); in {
					if same && nt.kind == byte(repo.EntrySubtree) && x.flags[j]&flagClaims != 0 {
						work = append(work, pair{j, repo.Hash(kt.hash)})
					}
					continue
				}
				if same && repo.Hash(kt.hash) == h {
					continue // vouched for by the known tree
				}
				want := repo.KindBlob
				if nt.kind == byte(repo.EntrySubtree) {
					want = repo.KindTree
				}
				if err := lookup(h, want, w.fetched); err != nil {
					return err
				}
			}
			x.flags[w.fetched] &^= flagClaims
		}
		// Trees with no known counterpart: child by child.
		for i := 0; i < x.len(); i++ {
			if x.flags[i]&flagClaims == 0 {
				continue
			}
			_, payload, err := r.Get(x.hashes[i])
			if err != nil {
				return err
			}
			it, err := newTreeIter(x.hashes[i], payload)
			for err == nil && it.next() {
				want := repo.KindBlob
				if it.kind == byte(repo.EntrySubtree) {
					want = repo.KindTree
				}
				if err := lookup(repo.Hash(it.hash), want, i); err != nil {
					return err
				}
			}
			x.flags[i] &^= flagClaims
		}
		// Commit parents, tag targets.
		for _, cl := range claims {
			if err := lookup(cl.h, cl.want, int(cl.parent)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pull: verifying the closure: %w", err)
	}
	return added, nil
}

// claimScenario is a known commit with a random nested tree, stored
// locally with its closure, and a random descendant commit whose objects
// were partly fetched (stored and indexed), partly withheld (claimed by the
// primary but absent), with some objects of the known closure sent again.
type claimScenario struct {
	local    *repo.Repo
	known    map[repo.Hash]bool
	index    []repo.Hash
	withheld map[repo.Hash]bool
}

func newClaimScenario(t *testing.T, r *rand.Rand) *claimScenario {
	t.Helper()
	local, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Close() })
	objs := map[repo.Hash][]byte{}
	kinds := map[repo.Hash]repo.Kind{}
	put := func(k repo.Kind, p []byte) repo.Hash {
		h := repo.HashObject(k, p)
		objs[h], kinds[h] = p, k
		return h
	}
	// Few blob contents and a pool of subtrees, so the same hash turns up
	// at several names: identical entries that are also in the index.
	blob := func() repo.Hash { return put(repo.KindBlob, fmt.Appendf(nil, "rr %d", r.IntN(12))) }
	var pool []repo.Hash
	var gen func(depth int) repo.Hash
	gen = func(depth int) repo.Hash {
		var es []repo.TreeEntry
		for i, n := 0, r.IntN(30); i < n; i++ {
			e := repo.TreeEntry{Kind: repo.EntryLeaf, Name: fmt.Sprintf("n%03d", 2*i), Hash: blob()}
			if depth > 0 && r.IntN(4) == 0 {
				e.Kind = repo.EntrySubtree
				if len(pool) > 0 && r.IntN(3) == 0 {
					e.Hash = pool[r.IntN(len(pool))]
				} else {
					e.Hash = gen(depth - 1)
				}
			}
			es = append(es, e)
		}
		h := put(repo.KindTree, encode(t, sortEntries(es)))
		pool = append(pool, h)
		return h
	}
	var mut func(h repo.Hash, depth int) repo.Hash
	mut = func(h repo.Hash, depth int) repo.Hash {
		tr, err := repo.DecodeTree(objs[h])
		if err != nil {
			t.Fatal(err)
		}
		var es []repo.TreeEntry
		for _, e := range tr.Entries {
			switch r.IntN(10) {
			case 0: // removed
				continue
			case 1:
				if e.Kind == repo.EntrySubtree {
					e.Hash = mut(e.Hash, depth-1)
				} else {
					e.Hash = blob()
				}
			case 2: // replaced by a subtree from anywhere (moved or copied)
				e.Kind, e.Hash = repo.EntrySubtree, pool[r.IntN(len(pool))]
			case 3:
				e.Kind, e.Hash = repo.EntrySubtree, gen(depth)
			}
			es = append(es, e)
			if r.IntN(12) == 0 { // added after it
				es = append(es, repo.TreeEntry{Kind: repo.EntryLeaf, Name: e.Name + "a", Hash: blob()})
			}
		}
		return put(repo.KindTree, encode(t, sortEntries(es)))
	}
	closure := func(root repo.Hash) map[repo.Hash]bool {
		seen := map[repo.Hash]bool{}
		var walk func(h repo.Hash)
		walk = func(h repo.Hash) {
			if seen[h] {
				return
			}
			seen[h] = true
			if kinds[h] == repo.KindTree {
				tr, _ := repo.DecodeTree(objs[h])
				for _, e := range tr.Entries {
					walk(e.Hash)
				}
			}
		}
		walk(root)
		return seen
	}
	sig := repo.Signature{Name: "t", Email: "t@example.com", When: 1}
	kt := gen(3)
	kc := put(repo.KindCommit, (&repo.Commit{Tree: kt, Author: sig, Committer: sig, Message: "k"}).Encode())
	nt := mut(kt, 3)
	nc := put(repo.KindCommit, (&repo.Commit{Tree: nt, Parents: []repo.Hash{kc}, Author: sig, Committer: sig, Message: "n"}).Encode())
	old := closure(kt)
	old[kc] = true
	for h := range old {
		if _, err := local.PutObject(kinds[h], objs[h]); err != nil {
			t.Fatal(err)
		}
	}
	s := &claimScenario{local: local, known: map[repo.Hash]bool{kc: true}, withheld: map[repo.Hash]bool{}}
	fresh := closure(nt)
	fresh[nc] = true
	for h := range fresh {
		fetched := h == nc || h == nt || r.IntN(7) != 0
		switch {
		case old[h]:
			if r.IntN(3) == 0 { // sent again although we have it
				s.index = append(s.index, h)
			}
		case fetched:
			if _, err := local.PutObject(kinds[h], objs[h]); err != nil {
				t.Fatal(err)
			}
			s.index = append(s.index, h)
		default:
			s.withheld[h] = true
		}
	}
	return s
}

// puller returns a puller whose index holds the scenario's fetched
// objects, checked as a round does before verifyClaims.
func (s *claimScenario) puller(t *testing.T) *puller {
	t.Helper()
	p := &puller{c: &Client{Local: s.local}, ctx: context.Background(),
		idx: newObjIndex(slices.Clone(s.index)), failures: map[int]error{}}
	if err := p.markLocal(0); err != nil {
		t.Fatal(err)
	}
	if len(p.failures) > 0 {
		t.Fatalf("scenario objects fail their checks: %v", p.failures)
	}
	return p
}

// TestVerifyClaimsSkipSameAsMerge: on random nested trees with changed,
// moved, copied, added and removed entries, objects withheld by the
// primary, and known objects sent again (identical entries that are in
// the index), verifyClaims adds exactly what the plain merge adds, with
// the same kinds and parents, and leaves no tree unverified. Every
// withheld child of a fetched object is among those added.
func TestVerifyClaimsSkipSameAsMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := 0; iter < 300; iter++ {
		s := newClaimScenario(t, r)
		got, want := s.puller(t), s.puller(t)
		n, err := got.verifyClaims(s.known)
		if err != nil {
			t.Fatal(err)
		}
		rn, rerr := refVerifyClaims(want, s.known)
		if rerr != nil {
			t.Fatal(rerr)
		}
		gx, wx := got.idx, want.idx
		if n != rn || !slices.Equal(gx.hashes, wx.hashes) || !slices.Equal(gx.want, wx.want) ||
			!slices.Equal(gx.parent, wx.parent) || !slices.Equal(gx.flags, wx.flags) || !maps.Equal(gx.extra, wx.extra) {
			t.Fatalf("iteration %d: added %d (%d objects indexed), plain merge %d (%d)", iter, n, gx.len(), rn, wx.len())
		}
		for i := 0; i < gx.len(); i++ {
			if gx.flags[i]&flagClaims != 0 {
				t.Fatalf("iteration %d: tree %s left unverified", iter, gx.hashes[i].Short())
			}
		}
		for _, h := range gx.hashes[gx.nSorted:] {
			if !s.withheld[h] {
				t.Fatalf("iteration %d: %s is local but was added", iter, h.Short())
			}
		}
		// Withheld children of indexed objects must have been found.
		for i := 0; i < gx.nSorted; i++ {
			_, payload, err := s.local.Get(gx.hashes[i])
			if err != nil {
				t.Fatal(err)
			}
			links, err := repo.Links(codeKinds[gx.kind[i]], payload)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				if _, in := gx.find(l.Hash); s.withheld[l.Hash] && !in {
					t.Fatalf("iteration %d: withheld %s, linked from %s, was not added", iter, l.Hash.Short(), gx.hashes[i].Short())
				}
			}
		}
	}
}
