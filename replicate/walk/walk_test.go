package walk

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// walkSet runs Walk and returns what it reported, failing on duplicates.
func walkSet(t testing.TB, r *repo.Repo, roots, known []repo.Hash) (map[repo.Hash]repo.Kind, Stats) {
	t.Helper()
	got := map[repo.Hash]repo.Kind{}
	var st Stats
	err := r.View(func(rd repo.Reader) error {
		var err error
		st, err = Missing(rd, roots, known, Options{}, func(h repo.Hash, kind repo.Kind, payload []byte) error {
			if _, dup := got[h]; dup {
				t.Errorf("%s reported twice", h.Short())
			}
			if payload != nil && repo.HashObject(kind, payload) != h {
				t.Errorf("%s reported with a payload of another object", h.Short())
			}
			got[h] = kind
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if st.Missing != len(got) {
		t.Errorf("stats say %d missing, %d reported", st.Missing, len(got))
	}
	return got, st
}

// wantDiff is the definition: closure(roots) minus closure(known).
func wantDiff(t testing.TB, r *repo.Repo, roots, known []repo.Hash) map[repo.Hash]bool {
	want := map[repo.Hash]bool{}
	for _, h := range roots {
		for x := range repotest.Closure(t, r, h) {
			want[x] = true
		}
	}
	for _, h := range known {
		for x := range repotest.Closure(t, r, h) {
			delete(want, x)
		}
	}
	return want
}

func assertExact(t *testing.T, got map[repo.Hash]repo.Kind, want map[repo.Hash]bool) {
	t.Helper()
	for h := range want {
		if _, ok := got[h]; !ok {
			t.Errorf("missing object %s not reported (subset!)", h.Short())
		}
	}
	for h := range got {
		if !want[h] {
			t.Errorf("reported %s, which the client holds", h.Short())
		}
	}
}

func TestWalkIncrementalFlat(t *testing.T) {
	r := repotest.MemRepo(t)
	c0 := must[repo.Hash](t)(repotest.SyntheticZone(r, "example.com.", "main", 1000))
	c1 := must[repo.Hash](t)(repotest.SetA(r, "example.com.", "main", []string{"h500"}, 60, [4]byte{192, 0, 2, 1}))

	got, st := walkSet(t, r, []repo.Hash{c1}, []repo.Hash{c0})
	assertExact(t, got, wantDiff(t, r, []repo.Hash{c1}, []repo.Hash{c0}))
	// c1, the new apex tree, the new h500 tree and its new A blob.
	if len(got) != 4 {
		t.Errorf("%d objects reported, want 4", len(got))
	}
	// Both commits, and both versions of the two trees on the path.
	if st.Commits != 2 || st.Trees != 4 {
		t.Errorf("visited %d commits and %d trees, want 2 and 4", st.Commits, st.Trees)
	}
}

func TestWalkIncrementalNested(t *testing.T) {
	r := repotest.MemRepo(t)
	c0 := must[repo.Hash](t)(repotest.Synthetic(r, repotest.SyntheticOptions{Zone: "example.com.", N: 1000, Fanout: 50}))
	// h123 lives under g2 (123/50).
	c1 := must[repo.Hash](t)(repotest.SetA(r, "example.com.", "main", []string{"g2", "h123"}, 60, [4]byte{192, 0, 2, 1}))
	got, st := walkSet(t, r, []repo.Hash{c1}, []repo.Hash{c0})
	assertExact(t, got, wantDiff(t, r, []repo.Hash{c1}, []repo.Hash{c0}))
	if len(got) != 5 || st.Commits != 2 || st.Trees != 6 {
		t.Errorf("reported %d, visited %d commits %d trees; want 5, 2, 6", len(got), st.Commits, st.Trees)
	}
}

// TestWalkStopsAtKnown: the work of an incremental walk does not depend on
// how much history lies behind the known commit.
func TestWalkStopsAtKnown(t *testing.T) {
	r := repotest.MemRepo(t)
	var tips []repo.Hash
	tips = append(tips, must[repo.Hash](t)(repotest.SyntheticZone(r, "example.com.", "main", 100)))
	for i := 0; i < 60; i++ {
		tips = append(tips, must[repo.Hash](t)(repotest.SetA(r, "example.com.", "main", []string{fmt.Sprintf("h%d", i)}, 60, [4]byte{192, 0, 2, byte(i)})))
	}
	var visited []int
	for _, k := range []int{1, 20, 59} {
		got, st := walkSet(t, r, []repo.Hash{tips[k+1]}, []repo.Hash{tips[k]})
		assertExact(t, got, wantDiff(t, r, []repo.Hash{tips[k+1]}, []repo.Hash{tips[k]}))
		visited = append(visited, st.Visited())
	}
	if visited[0] != visited[1] || visited[1] != visited[2] {
		t.Errorf("objects visited grow with history: %v", visited)
	}
	// Several commits behind: every commit in between, nothing older.
	got, st := walkSet(t, r, []repo.Hash{tips[60]}, []repo.Hash{tips[50]})
	assertExact(t, got, wantDiff(t, r, []repo.Hash{tips[60]}, []repo.Hash{tips[50]}))
	if st.Commits != 11 {
		t.Errorf("visited %d commits for 10 new ones, want 11", st.Commits)
	}
	// A root that the client already has (an ancestor of known): nothing.
	got, _ = walkSet(t, r, []repo.Hash{tips[30]}, []repo.Hash{tips[60]})
	if len(got) != 0 {
		t.Errorf("root behind known: %d reported", len(got))
	}
	// Full walk equals the closure.
	got, _ = walkSet(t, r, []repo.Hash{tips[60]}, nil)
	assertExact(t, got, wantDiff(t, r, []repo.Hash{tips[60]}, nil))
}

func TestWalkMerge(t *testing.T) {
	r := repotest.MemRepo(t)
	const zone = "example.com."
	base := must[repo.Hash](t)(repotest.SyntheticZone(r, zone, "main", 50))
	if err := r.UpdateBranch(zone, "side", repo.ZeroHash, base, nil); err != nil {
		t.Fatal(err)
	}
	a1 := must[repo.Hash](t)(repotest.SetA(r, zone, "main", []string{"h1"}, 60, [4]byte{192, 0, 2, 1}))
	b1 := must[repo.Hash](t)(repotest.SetA(r, zone, "side", []string{"h2"}, 60, [4]byte{192, 0, 2, 2}))
	b2 := must[repo.Hash](t)(repotest.SetA(r, zone, "side", []string{"h3"}, 60, [4]byte{192, 0, 2, 3}))
	// The merge takes main's tree plus side's h2 and h3 changes: build it
	// on main, then commit that tree with both parents.
	must[repo.Hash](t)(repotest.SetA(r, zone, "main", []string{"h2"}, 60, [4]byte{192, 0, 2, 2}))
	tmp := must[repo.Hash](t)(repotest.SetA(r, zone, "main", []string{"h3"}, 60, [4]byte{192, 0, 2, 3}))
	_, p, _ := r.Get(tmp)
	tmpc, _ := repo.DecodeCommit(p)
	if err := r.UpdateBranch(zone, "main", tmp, a1, nil); err != nil {
		t.Fatal(err)
	}
	m := must[repo.Hash](t)(repotest.Commit(r, zone, "main", tmpc.Tree, "merge side", b2))
	_, p, _ = r.Get(m)
	if mc, _ := repo.DecodeCommit(p); len(mc.Parents) != 2 {
		t.Fatalf("merge commit has %d parents", len(mc.Parents))
	}

	for _, c := range []struct {
		name  string
		known []repo.Hash
		want  int // objects
	}{
		{"know main only: side's commits come along", []repo.Hash{a1}, -1},
		{"know side only: main's commit comes along", []repo.Hash{b2}, -1},
		{"know both parents: the merge commit and its new apex tree", []repo.Hash{a1, b2}, 2},
		{"know base", []repo.Hash{base}, -1},
		{"know b1 and a1", []repo.Hash{b1, a1}, -1},
		{"know nothing", nil, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _ := walkSet(t, r, []repo.Hash{m}, c.known)
			want := wantDiff(t, r, []repo.Hash{m}, c.known)
			assertExact(t, got, want)
			if c.want >= 0 && len(got) != c.want {
				t.Errorf("%d reported, want %d", len(got), c.want)
			}
			for _, h := range []repo.Hash{a1, b1, b2} {
				if want[h] && got[h] != repo.KindCommit {
					t.Errorf("parent-side commit %s not followed", h.Short())
				}
			}
		})
	}
}

// TestWalkNeverSubset builds a random history (branches, merges, changes)
// and checks the guarantee on many root/known combinations: never a
// subset; and exact for these histories, which only change records.
func TestWalkNeverSubset(t *testing.T) {
	r := repotest.MemRepo(t)
	const zone = "example.com."
	rng := rand.New(rand.NewPCG(1, 2))
	branches := []string{"main"}
	all := []repo.Hash{must[repo.Hash](t)(repotest.Synthetic(r, repotest.SyntheticOptions{Zone: zone, N: 60, Fanout: 8}))}
	for i := 0; i < 80; i++ {
		b := branches[rng.IntN(len(branches))]
		switch x := rng.IntN(10); {
		case x == 0 && len(branches) < 5:
			nb := fmt.Sprintf("b%d", i)
			if err := r.UpdateBranch(zone, nb, repo.ZeroHash, all[rng.IntN(len(all))], nil); err != nil {
				t.Fatal(err)
			}
			branches = append(branches, nb)
		case x == 1 && len(all) > 3:
			tip := must[repo.Hash](t)(r.Branch(zone, b))
			other := all[rng.IntN(len(all))]
			if other == tip {
				continue
			}
			_, p, _ := r.Get(tip)
			c, _ := repo.DecodeCommit(p)
			all = append(all, must[repo.Hash](t)(repotest.Commit(r, zone, b, c.Tree, "merge", other)))
		default:
			n := rng.IntN(60)
			path := []string{fmt.Sprintf("g%d", n/8), fmt.Sprintf("h%d", n)}
			all = append(all, must[repo.Hash](t)(repotest.SetA(r, zone, b, path, uint32(rng.IntN(3)*60+60), [4]byte{192, 0, 2, byte(rng.IntN(4))})))
		}
	}
	for i := 0; i < 150; i++ {
		roots := []repo.Hash{all[rng.IntN(len(all))]}
		var known []repo.Hash
		for k := rng.IntN(3); k > 0; k-- {
			known = append(known, all[rng.IntN(len(all))])
		}
		got, _ := walkSet(t, r, roots, known)
		want := wantDiff(t, r, roots, known)
		for h := range want {
			if _, ok := got[h]; !ok {
				t.Fatalf("roots %v known %v: %s not reported (subset)", roots, known, h.Short())
			}
		}
		extra := 0
		for h := range got {
			if !want[h] {
				extra++
			}
		}
		if extra > 0 {
			t.Logf("roots %v known %v: %d extra objects (allowed superset)", roots, known, extra)
		}
	}
}

// TestWalkClockSkew: a known commit older (by its clock) than its parent,
// which is the root. The commit walk orders by time, so it cannot prove the
// root is held before it stops: the documented superset, never a subset.
// Without the skew, nothing is reported.
func TestWalkClockSkew(t *testing.T) {
	r := repotest.MemRepo(t)
	const zone = "example.com."
	c0 := must[repo.Hash](t)(repotest.SyntheticZone(r, zone, "main", 10))
	_, p, _ := r.Get(c0)
	cc, _ := repo.DecodeCommit(p)
	sig := repotest.Author
	sig.When -= 1000 // committed "before" its parent
	k := &repo.Commit{Tree: cc.Tree, Parents: []repo.Hash{c0}, Author: sig, Committer: sig, Message: "skewed\n"}
	kh := must[repo.Hash](t)(r.PutObject(repo.KindCommit, k.Encode()))
	got, _ := walkSet(t, r, []repo.Hash{c0}, []repo.Hash{kh})
	if want := repotest.Closure(t, r, c0); len(got) != len(want) {
		t.Errorf("skewed: %d objects reported, want the superset of %d", len(got), len(want))
	}
	sig.When += 2000
	k.Author, k.Committer = sig, sig
	kh = must[repo.Hash](t)(r.PutObject(repo.KindCommit, k.Encode()))
	if got, _ = walkSet(t, r, []repo.Hash{c0}, []repo.Hash{kh}); len(got) != 0 {
		t.Errorf("not skewed: %d objects reported for a root the client holds", len(got))
	}
}

func TestWalkRootKinds(t *testing.T) {
	r := repotest.MemRepo(t)
	c0 := must[repo.Hash](t)(repotest.SyntheticZone(r, "example.com.", "main", 10))
	_, p, _ := r.Get(c0)
	cc, _ := repo.DecodeCommit(p)

	got, _ := walkSet(t, r, []repo.Hash{cc.Tree}, nil)
	assertExact(t, got, wantDiff(t, r, []repo.Hash{cc.Tree}, nil))

	blob := must[repo.Hash](t)(r.PutObject(repo.KindBlob, []byte{1}))
	got, _ = walkSet(t, r, []repo.Hash{blob, repo.ZeroHash}, nil)
	if len(got) != 1 || got[blob] != repo.KindBlob {
		t.Errorf("blob root: %v", got)
	}

	tag := &repo.Tag{Object: c0, Type: repo.KindCommit, Name: "v1", Tagger: repotest.Author, Message: "v1\n"}
	th := must[repo.Hash](t)(r.PutObject(repo.KindTag, tag.Encode()))
	got, _ = walkSet(t, r, []repo.Hash{th}, []repo.Hash{c0})
	if len(got) != 1 || got[th] != repo.KindTag {
		t.Errorf("tag root with its commit known: %v", got)
	}
	got, _ = walkSet(t, r, []repo.Hash{th}, nil)
	assertExact(t, got, wantDiff(t, r, []repo.Hash{th}, nil))

	err := r.View(func(rd repo.Reader) error {
		_, err := Missing(rd, []repo.Hash{repo.HashObject(repo.KindBlob, []byte("absent"))}, nil, Options{}, func(repo.Hash, repo.Kind, []byte) error { return nil })
		return err
	})
	var nf *RootNotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("unknown root: %v, want RootNotFoundError", err)
	}
}

// TestWalkDamagedStore: a tree the walk must open is missing from the
// primary: a clear error, not a silent short answer.
func TestWalkDamagedStore(t *testing.T) {
	r := repotest.MemRepo(t)
	sub := repo.HashObject(repo.KindTree, []byte("never stored"))
	root, err := (&repo.Tree{Entries: []repo.TreeEntry{{Kind: repo.EntrySubtree, Name: "www", Hash: sub}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	rh := must[repo.Hash](t)(r.PutObject(repo.KindTree, root))
	err = r.View(func(rd repo.Reader) error {
		_, err := Missing(rd, []repo.Hash{rh}, nil, Options{}, func(repo.Hash, repo.Kind, []byte) error { return nil })
		return err
	})
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("walk over a missing tree: %v", err)
	}
}

// differReader is a Check's reader that knows how some trees compare with
// their bases (as the client's receipts do).
type differReader struct {
	repo.Reader
	diffs map[repo.Hash]differAnswer
	asked int
}

type differAnswer struct {
	bases []repo.Hash
	es    []DiffEntry
}

func (d *differReader) Diffed(h repo.Hash, bases []repo.Hash) ([]DiffEntry, bool) {
	d.asked++
	a, ok := d.diffs[h]
	if !ok || len(a.bases) != len(bases) {
		return nil, false
	}
	for i := range bases {
		if a.bases[i] != bases[i] {
			return nil, false
		}
	}
	return a.es, true
}

// treeOf returns commit c's tree.
func treeOf(t *testing.T, r *repo.Repo, c repo.Hash) repo.Hash {
	t.Helper()
	_, p, err := r.Get(c)
	if err != nil {
		t.Fatal(err)
	}
	return must[*repo.Commit](t)(repo.DecodeCommit(p)).Tree
}

// TestCheckDiffer: a Check whose reader knows how the new apex tree of a
// one-record change compares with the old one (walk.Differ) reports the
// same objects without reading either apex; an answer for other bases
// than the walk's is not taken; Missing (the server) never asks.
func TestCheckDiffer(t *testing.T) {
	r := repotest.MemRepo(t)
	c0 := must[repo.Hash](t)(repotest.SyntheticZone(r, "example.com.", "main", 1000))
	c1 := must[repo.Hash](t)(repotest.SetA(r, "example.com.", "main", []string{"h500"}, 60, [4]byte{192, 0, 2, 1}))
	oldApex, newApex := treeOf(t, r, c0), treeOf(t, r, c1)
	_, np, err := r.Get(newApex)
	if err != nil {
		t.Fatal(err)
	}
	_, op, err := r.Get(oldApex)
	if err != nil {
		t.Fatal(err)
	}
	var es []DiffEntry
	if err := repo.DiffTree(newApex, np, [][]byte{op}, func(kind repo.EntryKind, h repo.Hash, same []repo.Hash) error {
		es = append(es, DiffEntry{Kind: kind, Hash: h, Same: append([]repo.Hash(nil), same...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check := func(rd repo.Reader) (map[repo.Hash]repo.Kind, Stats) {
		got := map[repo.Hash]repo.Kind{}
		st, err := Check(rd, []repo.Hash{c1}, []repo.Hash{c0}, func(h repo.Hash, kind repo.Kind, _ []byte) error {
			got[h] = kind
			return nil
		}, func(h repo.Hash, want repo.Kind, err error) error {
			t.Errorf("problem with %s (%s): %v", h.Short(), want, err)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, st
	}
	plain, pst := check(r)
	assertExact(t, plain, wantDiff(t, r, []repo.Hash{c1}, []repo.Hash{c0}))

	d := &differReader{Reader: r, diffs: map[repo.Hash]differAnswer{newApex: {bases: []repo.Hash{oldApex}, es: es}}}
	got, st := check(d)
	assertExact(t, got, wantDiff(t, r, []repo.Hash{c1}, []repo.Hash{c0}))
	if st.Trees != pst.Trees-2 || st.Bytes != pst.Bytes-int64(len(np)+len(op)) {
		t.Errorf("with the apex's comparison known: %d trees, %d bytes read; want %d, %d", st.Trees, st.Bytes, pst.Trees-2, pst.Bytes-int64(len(np)+len(op)))
	}

	other := &differReader{Reader: r, diffs: map[repo.Hash]differAnswer{newApex: {bases: []repo.Hash{newApex}, es: nil}}}
	got, st = check(other)
	assertExact(t, got, wantDiff(t, r, []repo.Hash{c1}, []repo.Hash{c0}))
	if st != pst || other.asked == 0 {
		t.Errorf("an answer for other bases was taken (stats %+v, want %+v; asked %d)", st, pst, other.asked)
	}

	srv := &differReader{Reader: r, diffs: d.diffs}
	if _, err := Missing(srv, []repo.Hash{c1}, []repo.Hash{c0}, Options{}, func(repo.Hash, repo.Kind, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if srv.asked != 0 {
		t.Errorf("Missing asked the reader %d times", srv.asked)
	}
}

// markReader keeps a Check's seen set (walk.Marks), as the client's
// receipts do, and counts what it is asked.
type markReader struct {
	repo.Reader
	marks map[repo.Hash]repo.Kind
	calls int
}

func (m *markReader) Marked(h repo.Hash) (repo.Kind, bool) {
	m.calls++
	k, ok := m.marks[h]
	return k, ok
}

func (m *markReader) Mark(h repo.Hash, kind repo.Kind) {
	m.calls++
	if k, ok := m.marks[h]; ok && k != kind {
		panic(fmt.Sprintf("%s marked as a %s, then as a %s", h.Short(), k, kind))
	}
	m.marks[h] = kind
}

// checkAll runs a Check of roots over rd with nothing known and returns
// what it reported, in order, failing on duplicates and problems.
func checkAll(t *testing.T, rd repo.Reader, roots []repo.Hash) ([]repo.Hash, map[repo.Hash]repo.Kind, Stats) {
	t.Helper()
	var order []repo.Hash
	got := map[repo.Hash]repo.Kind{}
	st, err := Check(rd, roots, nil, func(h repo.Hash, kind repo.Kind, _ []byte) error {
		if _, dup := got[h]; dup {
			t.Errorf("%s reported twice", h.Short())
		}
		got[h] = kind
		order = append(order, h)
		return nil
	}, func(h repo.Hash, want repo.Kind, err error) error {
		t.Errorf("problem with %s (%s): %v", h.Short(), want, err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return order, got, st
}

// TestCheckInPasses: a Check takes the subtrees of a tree without bases
// that may have more than chunkTrees of them in passes over slices of the
// hash space; it reports exactly the closure, each object once, reads
// what a single pass reads, and still takes every tree's subtrees in
// ascending hash order; a reader that keeps the seen set (Marks) gives the
// same answer, and Missing never uses it.
func TestCheckInPasses(t *testing.T) {
	for _, fanout := range []int{0, 40} {
		r := repotest.MemRepo(t)
		c := must[repo.Hash](t)(repotest.Synthetic(r, repotest.SyntheticOptions{Zone: "example.com.", N: 2000, Fanout: fanout}))
		want := wantDiff(t, r, []repo.Hash{c}, nil)
		_, one, ost := checkAll(t, r, []repo.Hash{c})
		assertExact(t, one, want)

		defer func(n int) { chunkTrees = n }(chunkTrees)
		chunkTrees = 10
		order, got, st := checkAll(t, r, []repo.Hash{c})
		assertExact(t, got, want)
		if st != ost {
			t.Errorf("fanout %d: in passes, stats %+v; in one, %+v", fanout, st, ost)
		}
		// The apex's name trees (or groups) come in ascending hash order.
		apex := treeOf(t, r, c)
		_, ap, err := r.Get(apex)
		if err != nil {
			t.Fatal(err)
		}
		subs := map[repo.Hash]bool{}
		if err := repo.DiffTree(apex, ap, nil, func(kind repo.EntryKind, h repo.Hash, _ []repo.Hash) error {
			if kind == repo.EntrySubtree {
				subs[h] = true
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var prev repo.Hash
		n := 0
		for _, h := range order {
			if !subs[h] {
				continue
			}
			if n > 0 && string(h[:]) < string(prev[:]) {
				t.Fatalf("fanout %d: subtree %s after %s", fanout, h.Short(), prev.Short())
			}
			prev = h
			n++
		}
		if n != len(subs) || n < 40 {
			t.Fatalf("fanout %d: %d of %d subtrees reported", fanout, n, len(subs))
		}

		m := &markReader{Reader: r, marks: map[repo.Hash]repo.Kind{}}
		_, mgot, mst := checkAll(t, m, []repo.Hash{c})
		assertExact(t, mgot, want)
		if mst != ost || m.calls == 0 {
			t.Errorf("fanout %d: with Marks, stats %+v (%d calls); want %+v", fanout, mst, m.calls, ost)
		}
		srv := &markReader{Reader: r, marks: map[repo.Hash]repo.Kind{}}
		if _, err := Missing(srv, []repo.Hash{c}, nil, Options{}, func(repo.Hash, repo.Kind, []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if srv.calls != 0 {
			t.Errorf("Missing used the reader's marks %d times", srv.calls)
		}
	}
}
