package replicate

import (
	"fmt"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// maxKnownHistory bounds how many local commits behind the known tips are
// trusted as "in a known closure" when verifying claims.
const maxKnownHistory = 10000

// verifyClaims checks the children the walk left out (the primary says they
// are in the closure of our known tips, so they must be local). Rather than
// one store lookup per child — 100,000 of them for one changed record in a
// flat 100k zone — each fetched commit whose parent is a known commit is
// compared with that parent tree by tree: a child whose (kind, name, hash)
// equals the entry at the same place in the known tree is in a known
// closure, which is complete by invariant. Only the children the comparison
// cannot vouch for are looked up. Absent ones join the index, to be fetched
// next round; it returns how many. It reads the store, so the batch must
// have been flushed.
func (p *puller) verifyClaims(known map[repo.Hash]bool) (int, error) {
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
				if same && string(kt.hash) == string(nt.hash) {
					// Vouched for by the known tree, whose closure is
					// complete, and so is the identical run that follows;
					// both stop on its last entry. This comes before the
					// index lookup, which only mattered here for an
					// identical subtree that was also fetched with claims
					// of its own: it is no longer paired with itself but
					// checked child by child below, each child in the
					// index or present locally, which is no weaker.
					skipIdentical(&nt, &kt)
					continue
				}
				h := repo.Hash(nt.hash)
				if j, in := x.find(h); in {
					if same && nt.kind == byte(repo.EntrySubtree) && x.flags[j]&flagClaims != 0 {
						work = append(work, pair{j, repo.Hash(kt.hash)})
					}
					continue
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

// knownHistory is the set of commits reachable from the known tips (up to
// maxKnownHistory of them), read lazily from the local store.
type knownHistory struct {
	r     repo.Reader
	seen  map[repo.Hash]bool
	queue []repo.Hash
}

func newKnownHistory(r repo.Reader, known map[repo.Hash]bool) *knownHistory {
	h := &knownHistory{r: r, seen: map[repo.Hash]bool{}}
	for k := range known {
		h.queue = append(h.queue, k)
	}
	return h
}

// has reports whether c is a known tip or one of its ancestors, expanding
// the history breadth-first until c is found or the bound is reached.
func (h *knownHistory) has(c repo.Hash) bool {
	for !h.seen[c] && len(h.queue) > 0 && len(h.seen) < maxKnownHistory {
		next := h.queue[0]
		h.queue = h.queue[1:]
		if h.seen[next] {
			continue
		}
		kind, payload, err := h.r.Get(next)
		if err != nil || kind != repo.KindCommit {
			continue // tags and absent objects are not history
		}
		h.seen[next] = true
		if cm, err := repo.DecodeCommit(payload); err == nil {
			h.queue = append(h.queue, cm.Parents...)
		}
	}
	return h.seen[c]
}
