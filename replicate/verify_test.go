package replicate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// checkScenario is a known commit with a random nested tree, stored
// locally with its closure, and a descendant commit whose new objects are
// partly stored, partly withheld (a transfer that left them out), and
// possibly one bad link planted in it.
type checkScenario struct {
	local    *repo.Repo
	objs     map[repo.Hash][]byte
	kinds    map[repo.Hash]repo.Kind
	known    repo.Hash
	target   repo.Hash
	withheld map[repo.Hash]bool
	planted  []string // nil: none; else what the check may say (one of them)
}

func newCheckScenario(t *testing.T, r *rand.Rand, plant string) *checkScenario {
	t.Helper()
	local, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Close() })
	s := &checkScenario{local: local, objs: map[repo.Hash][]byte{}, kinds: map[repo.Hash]repo.Kind{}, withheld: map[repo.Hash]bool{}}
	put := func(k repo.Kind, p []byte) repo.Hash {
		h := repo.HashObject(k, p)
		s.objs[h], s.kinds[h] = p, k
		return h
	}
	// Few blob contents and a pool of subtrees, so the same hash turns up
	// at several names and in both versions.
	blob := func() repo.Hash {
		p, err := (&repo.Blob{Owner: "example.com.", Class: 1, Type: 1, TTL: 60, RData: [][]byte{{192, 0, 2, byte(r.IntN(12))}}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return put(repo.KindBlob, p)
	}
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
		tr, err := repo.DecodeTree(s.objs[h])
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
	sig := repo.Signature{Name: "t", Email: "t@example.com", When: 1}
	kt := gen(3)
	s.known = put(repo.KindCommit, (&repo.Commit{Tree: kt, Author: sig, Committer: sig, Message: "k\n"}).Encode())
	nt := mut(kt, 3)
	switch plant {
	case "leaf at a tree":
		// The new root tree gets a leaf naming a tree (of either version).
		nt = s.addEntry(t, nt, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "zz-planted", Hash: pool[r.IntN(len(pool))]})
		s.planted = []string{"linked as"}
	case "subtree at a blob":
		nt = s.addEntry(t, nt, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "zz-planted", Hash: blob()})
		// The blob is read as a tree, or (when another tree names it as
		// a leaf too) found linked both ways.
		s.planted = []string{"where a tree is linked", "linked as"}
	case "undecodable blob":
		nt = s.addEntry(t, nt, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "zz-planted", Hash: put(repo.KindBlob, []byte("\x01\x40not a name"))})
		s.planted = []string{"does not decode"}
	}
	s.target = put(repo.KindCommit, (&repo.Commit{Tree: nt, Parents: []repo.Hash{s.known}, Author: sig, Committer: sig, Message: "n\n"}).Encode())
	old := s.closure(s.known)
	for h := range old {
		s.store(t, h)
	}
	for h := range s.closure(s.target) {
		if old[h] {
			continue
		}
		if r.IntN(4) == 0 {
			s.withheld[h] = true
		} else {
			s.store(t, h)
		}
	}
	return s
}

// addEntry returns tree h with e added (replacing an entry of that name).
func (s *checkScenario) addEntry(t *testing.T, h repo.Hash, e repo.TreeEntry) repo.Hash {
	t.Helper()
	tr, err := repo.DecodeTree(s.objs[h])
	if err != nil {
		t.Fatal(err)
	}
	p := encode(t, sortEntries(append(tr.Entries, e)))
	nh := repo.HashObject(repo.KindTree, p)
	s.objs[nh], s.kinds[nh] = p, repo.KindTree
	return nh
}

func (s *checkScenario) store(t *testing.T, h repo.Hash) {
	t.Helper()
	if err := s.local.Put(h, s.kinds[h], s.objs[h]); err != nil {
		t.Fatal(err)
	}
}

// closure is every object reachable from h, following links by the
// objects' own kinds (a planted leaf at a tree is followed as a tree).
func (s *checkScenario) closure(h repo.Hash) map[repo.Hash]bool {
	seen := map[repo.Hash]bool{}
	stack := []repo.Hash{h}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		links, err := repo.Links(s.kinds[h], s.objs[h])
		if err != nil {
			continue
		}
		for _, l := range links {
			stack = append(stack, l.Hash)
		}
	}
	return seen
}

// TestClosureCheckRounds: on random trees with changed, moved, copied,
// added and removed entries and objects withheld at random, the closure
// check asks only for withheld objects, and once those arrive (each round
// stores what the previous one asked for) finds the target complete; with
// a wrong-kind link or an undecodable blob planted in the new tree, it
// fails the target naming the cause, and never calls it complete.
func TestClosureCheckRounds(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	plants := []string{"", "", "leaf at a tree", "subtree at a blob", "undecodable blob"}
	for iter := 0; iter < 300; iter++ {
		plant := plants[iter%len(plants)]
		s := newCheckScenario(t, r, plant)
		p := &puller{c: &Client{Local: s.local}, ctx: context.Background(), got: received{},
			expect: map[repo.Hash]kindSet{}, failed: map[repo.Hash]fetchFailure{}, actual: map[repo.Hash]repo.Kind{}}
		s.decide(t, p, iter, plant, nil)
	}
}

// decide runs closure check rounds for the scenario's target until it is
// decided, storing each object a round asks for (which must be one the
// scenario withheld) and passing it to stored, if set; then it asserts the
// decision: a complete closure is accepted and stored whole, a planted
// fault fails the target with an error naming it.
func (s *checkScenario) decide(t *testing.T, p *puller, iter int, plant string, stored func(repo.Hash)) {
	t.Helper()
	it := &item{new: s.target, needs: true, res: BranchResult{Zone: "example.com.", Name: "main"}}
	asked := map[repo.Hash]kindSet{}
	for round := 0; ; round++ {
		zoneKnown := map[string][]repo.Hash{"example.com.": {s.known}}
		need, err := p.checkClosures([]*item{it}, zoneKnown, asked)
		if err != nil {
			t.Fatal(err)
		}
		if len(need) == 0 {
			break
		}
		if round > 20 {
			t.Fatalf("iteration %d: still asking after %d rounds", iter, round)
		}
		for _, h := range need {
			if !s.withheld[h] {
				t.Fatalf("iteration %d (%q): asked for %s, which is stored or not in the closure", iter, plant, h.Short())
			}
			delete(s.withheld, h)
			s.store(t, h)
			if stored != nil {
				stored(h)
			}
		}
	}
	if plant == "" {
		if it.res.Err != nil || !it.checked {
			t.Fatalf("iteration %d: complete closure not accepted: %v", iter, it.res.Err)
		}
		for h := range s.closure(s.target) {
			if ok, _ := s.local.Has(h); !ok {
				t.Fatalf("iteration %d: checked complete, but %s is not stored", iter, h.Short())
			}
		}
		return
	}
	said := false
	for _, w := range s.planted {
		said = said || it.res.Err != nil && strings.Contains(it.res.Err.Error(), w)
	}
	if it.checked || !said {
		t.Fatalf("iteration %d (%q): checked %v, error %v; want an error saying one of %q", iter, plant, it.checked, it.res.Err, s.planted)
	}
}
