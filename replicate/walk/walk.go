// Package walk is the replication walk: which objects reachable from some
// roots a client lacks, given the objects it holds with their closures
// (DESIGN §4.3). The server answers walk and pack requests with Missing; the
// client runs Check over its own store after a transfer to find what a
// target still lacks. Neither end's HTTP code is here: this package reads a
// repo.Reader and nothing else.
package walk

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// The walk answers "which objects reachable from roots does a client lack,
// given that it holds known with their complete closures?"
//
// Exact guarantees of Missing:
//
//   - Never a subset: every object reachable from a root is either reported
//     or in the closure of some known hash. A client that fetches what is
//     reported ends up with complete closures.
//   - Usually exact, sometimes a superset: an object that the client holds
//     can be reported when it is only reachable from known through a path
//     the walk did not look at (a subtree moved to another name, content
//     shared between zones, history beyond Options.MaxKnownCommits on
//     the known side, or commit clocks that run backwards: commits are
//     visited newest first, so a root the client holds is recognised only
//     when a known commit reaching it is not older than it). The v0 protocol
//     allows that; clients skip what they have.
//   - Cost in proportion to what changed, not to history or zone size:
//     commits are visited newest first from roots and known at the same time
//     (git's "paint down to the merge base"), and the walk stops as soon as
//     every commit still queued from a root is also reachable from known.
//     Only commits between the known tips and the roots are read. Each
//     missing commit's tree is then diffed path by path against its parents'
//     trees (and the trees of up to 4 known tips whose history meets the
//     roots'), descending only into entries whose hash differs; an unchanged
//     subtree is never opened. An incremental pull of one changed record reads
//     the two commits, and the trees on the changed path in both versions
//     (3 levels for a name one label below the apex).
//   - Bounded memory and no recursion: the commit and tree walks use an
//     explicit heap and stack; the seen set holds only reported hashes. (A
//     check queues the subtrees of a tree too large for one pass in
//     passes, walking each pass's within that tree's read: one level of
//     recursion per such tree on a path.)
//
// One caveat on "independent of zone size": a tree is one object, so the
// trees on the changed path are read whole. In a flat zone (every name one
// label below the apex) the apex tree has one entry per name and the diff
// scans it (a byte comparison without allocation, but proportional to its
// size); objects visited stay constant.

// Options bound one walk. The zero value uses the defaults.
type Options struct {
	// MaxKnownCommits bounds how many commits reachable from known the walk
	// reads while proving that a commit reachable from a root is already
	// held by the client. Beyond it the walk stops looking and reports
	// unproven commits as missing (a superset, never a subset). Default
	// 100,000.
	MaxKnownCommits int
}

func (o Options) maxKnownCommits() int {
	if o.MaxKnownCommits > 0 {
		return o.MaxKnownCommits
	}
	return 100000
}

// Stats counts the work one walk did.
type Stats struct {
	Commits int   // commit objects read (both sides)
	Trees   int   // tree objects read (new trees and their bases)
	Bytes   int64 // payload bytes read
	Missing int   // objects reported
}

// Visited is the number of objects the walk read.
func (s Stats) Visited() int { return s.Commits + s.Trees }

// RootNotFoundError says a walk root is not in the primary (HTTP 404).
type RootNotFoundError struct{ Hash repo.Hash }

func (e *RootNotFoundError) Error() string {
	return fmt.Sprintf("root %s not in primary", e.Hash.Short())
}

// ErrIncomplete marks an object reachable from a root that the primary's
// own store lacks or cannot decode: the primary is damaged (HTTP 500).
var ErrIncomplete = errors.New("primary store is incomplete or corrupt")

// EmitFunc receives each missing object once. payload is the object's
// payload when the walk had to read it anyway (commits, trees, roots), nil
// otherwise (blobs below a tree are never read by the walk, nor is a tree
// whose comparison a Check's Differ knew). A tree's
// payload may be lent by the reader (repo.Peek): it is valid only during
// the call.
type EmitFunc func(h repo.Hash, kind repo.Kind, payload []byte) error

// Missing reports, through emit, every object reachable from roots that is
// not in the closure of known (see the guarantees above). Each object
// that is not a root comes after an object that links to it (one linked
// from several places comes once, after the first). The all-zero root is
// skipped; a root rd does not hold is a *RootNotFoundError; known hashes rd
// does not hold are ignored. An error returned by emit stops the walk and
// is returned.
func Missing(rd repo.Reader, roots, known []repo.Hash, opts Options, emit EmitFunc) (Stats, error) {
	return walk(rd, roots, known, opts, emit, nil)
}

// ProblemFunc is told about an object a Check needed and could not use.
type ProblemFunc func(h repo.Hash, want repo.Kind, err error) error

// Check is Missing run as a check of rd's own closures: the client runs it
// over its store after a transfer, with known = its local tips, to find
// what a target still lacks. Objects are then looked at, not trusted:
// problem is told about every object the walk needed and could not use
// (absent, err wrapping repo.ErrNotFound; of another kind than its link
// expects; undecodable), and the walk goes on without it instead of
// failing; a non-nil return stops the walk with that error. Objects linked
// again with another kind than they were reported with are problems too.
// Blobs are reported to emit but not remembered (they link nothing, and
// emit reads each one), so a check of a million-record zone keeps only its
// trees and commits in memory.
func Check(rd repo.Reader, roots, known []repo.Hash, emit EmitFunc, problem ProblemFunc) (Stats, error) {
	return walk(rd, roots, known, Options{}, emit, &walkCheck{problem: problem})
}

type walkCheck struct {
	problem ProblemFunc
}

// Differ is what a Check's reader may implement when it already knows how
// some trees compare with their bases: the client compares each tree a
// pack stream brings with the local tree it replaces as it arrives, and
// the check would otherwise read both and compare them again (for a flat
// zone's apex, twice 4 MB per 100,000 names).
type Differ interface {
	// Diffed returns the entries of tree h that repo.DiffTree reports
	// comparing it with exactly bases (in that order), in its order, and
	// true; false when it does not know. A true answer vouches for h too:
	// stored, a tree, decoding strictly.
	Diffed(h repo.Hash, bases []repo.Hash) ([]DiffEntry, bool)
}

// DiffEntry is one entry repo.DiffTree reports: its kind, its hash, and
// for a subtree the hashes the bases hold under its name.
type DiffEntry struct {
	Kind repo.EntryKind
	Hash repo.Hash
	Same []repo.Hash
}

// Marks is what a Check's reader may implement to keep the walk's seen
// set (what it reported or queued, with the kind it did so as) itself: the
// client has a receipt for nearly every object a check reaches, and a bit
// there costs nothing next to a second map of a million trees. Mark is
// called for an object not marked yet, or again with the kind it was
// marked with; the marks are the walk's only, and the reader forgets them
// when the walk ends.
type Marks interface {
	Marked(h repo.Hash) (repo.Kind, bool)
	Mark(h repo.Hash, kind repo.Kind)
}

func walk(rd repo.Reader, roots, known []repo.Hash, opts Options, emit EmitFunc, chk *walkCheck) (Stats, error) {
	w := &walker{
		rd:       rd,
		opts:     opts,
		emitFn:   emit,
		chk:      chk,
		seen:     make(map[repo.Hash]uint8),
		knownObj: make(map[repo.Hash]uint8),
		commits:  make(map[repo.Hash]*commitNode),
	}
	if m, ok := rd.(Marks); ok && chk != nil {
		w.marks = m
	}
	err := w.run(roots, known)
	return w.stats, err
}

// Paint colours of the commit walk.
const (
	fromRoot  uint8 = 1
	fromKnown uint8 = 2
)

type commitNode struct {
	hash    repo.Hash
	when    int64
	tree    repo.Hash
	parents []repo.Hash
	payload []byte
	flags   uint8
	inHeap  bool
	popped  bool // popped at least once while only fromRoot
	src     int  // 1 + index in walker.knownTips of a known tip this commit is reachable from; 0: none
	order   int  // first pop order, for emission order
}

type commitHeap []*commitNode

func (h commitHeap) Len() int { return len(h) }
func (h commitHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when > h[j].when // newest first
	}
	return bytes.Compare(h[i].hash[:], h[j].hash[:]) < 0
}
func (h commitHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *commitHeap) Push(x any)   { *h = append(*h, x.(*commitNode)) }
func (h *commitHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return n
}

// treeWork is one tree to diff: its hash and the hashes of the trees at the
// same path in the parents (bases); entries equal to a base entry are known
// or already reported. A full pull of a flat zone queues one per name (a
// million), so it is kept small: the bases, usually none there, sit behind
// a pointer (40 bytes an entry rather than 56).
//
// A tree is marked seen when it is queued but emitted only when it is
// popped and read: emit gets its payload, so a pack stream frames it from
// the read the diff needs anyway instead of reading it a second time, and
// it still comes after the object linking it, which was emitted before
// that object was diffed.
type treeWork struct {
	hash  repo.Hash
	bases *[]repo.Hash
}

// newTreeWork queues tree h with bases (copied).
func newTreeWork(h repo.Hash, bases []repo.Hash) treeWork {
	if len(bases) == 0 {
		return treeWork{hash: h}
	}
	b := slices.Clone(bases)
	return treeWork{hash: h, bases: &b}
}

func (tw treeWork) baseList() []repo.Hash {
	if tw.bases == nil {
		return nil
	}
	return *tw.bases
}

type walker struct {
	rd     repo.Reader
	opts   Options
	emitFn EmitFunc
	chk    *walkCheck // nil: the server's walk
	stats  Stats

	seen     map[repo.Hash]uint8 // reported, with their kind (repo.Kind.Code), unless marks keeps them
	marks    Marks
	knownObj map[repo.Hash]uint8 // known non-commit objects (closures held), with their kind
	commits  map[repo.Hash]*commitNode
	queue    commitHeap
	pending  int // queued nodes painted fromRoot only
	pops     int
	trees    []treeWork

	knownTips []*commitNode // known commits as the client sent them

	alone   aloneState                    // viewAlone's tree
	aloneFn func(repo.Kind, []byte) error // w.diffAlone, made once
}

// maxExtraBases caps how many known tips' trees a missing commit's tree is
// also compared with (beyond its parents' trees).
const maxExtraBases = 4

func (w *walker) emit(h repo.Hash, kind repo.Kind, payload []byte) error {
	if w.chk == nil || kind != repo.KindBlob {
		w.mark(h, kind.Code())
	}
	return w.report(h, kind, payload)
}

// report is emit for an object already marked seen (a tree is marked when
// it is queued): writing the map again costs a lookup per tree, a million
// of them in a full pull of a million-record flat zone.
func (w *walker) report(h repo.Hash, kind repo.Kind, payload []byte) error {
	w.stats.Missing++
	return w.emitFn(h, kind, payload)
}

// mark adds h to the seen set.
func (w *walker) mark(h repo.Hash, k uint8) {
	if w.marks != nil {
		w.marks.Mark(h, repo.KindOfCode(k))
		return
	}
	w.seen[h] = k
}

// markNew adds h to the seen set (the server's walk, which keeps it in
// seen) and reports whether it was not there: one map operation instead
// of a lookup and an insert, for each of the two million entries a full
// pack of a million-record flat zone diffs. A kind already marked may be
// overwritten: only a check reads the kinds.
func (w *walker) markNew(h repo.Hash, k uint8) bool {
	n := len(w.seen)
	w.seen[h] = k
	return len(w.seen) > n
}

// marked looks h up in the seen set.
func (w *walker) marked(h repo.Hash) (uint8, bool) {
	if w.marks != nil {
		k, ok := w.marks.Marked(h)
		return k.Code(), ok
	}
	k, ok := w.seen[h]
	return k, ok
}

func (w *walker) skip(h repo.Hash) bool {
	if _, ok := w.marked(h); ok {
		return true
	}
	_, ok := w.knownObj[h]
	return ok
}

// skipLinked is skip for an object linked as want. In a check, an object
// already reported (or known) as another kind is a problem: one of its
// links is wrong, and the read that would show which is not repeated.
func (w *walker) skipLinked(h repo.Hash, want repo.Kind) (bool, error) {
	k, ok := w.marked(h)
	if !ok {
		k, ok = w.knownObj[h]
	}
	if !ok {
		return false, nil
	}
	if w.chk != nil && k != want.Code() {
		return true, w.problem(h, want, fmt.Errorf("object %s is linked as a %s and as a %s: %w", h, repo.KindOfCode(k), want, repo.ErrCorrupt))
	}
	return true, nil
}

// problem handles an object the walk needed and could not use: the
// server's walk stops on it (err is returned as is); a check reports it and
// goes on.
func (w *walker) problem(h repo.Hash, want repo.Kind, err error) error {
	if w.chk == nil {
		return err
	}
	return w.chk.problem(h, want, err)
}

func (w *walker) run(roots, known []repo.Hash) error {
	// Known side first, so a root that is itself known is skipped.
	for _, h := range known {
		if err := w.addKnown(h); err != nil {
			return err
		}
	}
	for _, h := range roots {
		if h.IsZero() {
			continue
		}
		if err := w.addRoot(h); err != nil {
			return err
		}
	}
	missing, err := w.paint()
	if err != nil {
		return err
	}
	for _, n := range missing {
		if err := w.emit(n.hash, repo.KindCommit, n.payload); err != nil {
			return err
		}
		n.payload = nil
	}
	// Each missing commit's tree is compared with its parents' trees (and
	// known tips'), and what it holds unchanged from them is left to them:
	// sound only if their closures are reported or known by then. So the
	// trees are taken one commit at a time, parents before children, each
	// with everything below it before the next; a tree met again (under
	// another commit, or inside another tree) was taken whole already.
	// (Queued all at once, a tree shared by two commits, say the first
	// tree of a history that a revert brings back, was compared with the
	// bases of the newest, which may be trees compared with it in turn:
	// each left their common entries to the other, and neither reported
	// them.) Roots that are trees have no bases; they come last, as
	// before.
	extra := w.relevantKnownTrees()
	for _, n := range w.parentsFirst(missing) {
		if skip, err := w.skipLinked(n.tree, repo.KindTree); skip || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		bases := make([]repo.Hash, 0, len(n.parents)+len(extra))
		for _, p := range n.parents {
			if pn := w.commits[p]; pn != nil { // always: every parent of a missing commit was painted
				bases = repo.AppendUnique(bases, pn.tree)
			}
		}
		for _, t := range extra {
			bases = repo.AppendUnique(bases, t)
		}
		if slices.Contains(bases, n.tree) {
			continue // that tree is known or reported, with its closure
		}
		w.mark(n.tree, repo.KindTree.Code())
		mark := len(w.trees) // roots that are trees wait below, for the end
		w.trees = append(w.trees, newTreeWork(n.tree, bases))
		if err := w.drain(mark); err != nil {
			return err
		}
	}
	return w.diffTrees()
}

// parentsFirst orders the missing commits (children before parents, by
// first pop) so that each comes after its missing parents. The reverse
// of the pop order is that already when commit clocks run forward; a
// parent committed after its child moves before it. No recursion: a
// history can be long.
func (w *walker) parentsFirst(missing []*commitNode) []*commitNode {
	const (
		visiting = 1
		placed   = 2
	)
	state := make(map[*commitNode]uint8, len(missing))
	out := make([]*commitNode, 0, len(missing))
	var stack []*commitNode
	for i := len(missing) - 1; i >= 0; i-- {
		stack = append(stack[:0], missing[i])
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			if state[n] == placed {
				stack = stack[:len(stack)-1]
				continue
			}
			state[n] = visiting
			pushed := false
			for _, p := range n.parents {
				pn := w.commits[p]
				if pn != nil && pn.flags == fromRoot && pn.popped && state[pn] == 0 {
					stack = append(stack, pn)
					pushed = true
					break
				}
			}
			if !pushed {
				state[n] = placed
				out = append(out, n)
				stack = stack[:len(stack)-1]
			}
		}
	}
	return out
}

// relevantKnownTrees returns the trees of the known tips whose history
// meets the roots' history (a commit reached from both sides), at most
// maxExtraBases of them. A missing commit's tree is also compared with
// these: a sibling branch the client holds often has the same new objects
// (the upstream CLI bumps the SOA serial identically on both), and known
// tips of unrelated zones are left out so they cost nothing.
func (w *walker) relevantKnownTrees() []repo.Hash {
	var out []repo.Hash
	seen := map[int]bool{}
	for _, n := range w.commits {
		if n.flags != fromRoot|fromKnown || n.src == 0 || seen[n.src] {
			continue
		}
		seen[n.src] = true
		out = repo.AppendUnique(out, w.knownTips[n.src-1].tree)
	}
	// Map order is random; keep the walk deterministic.
	slices.SortFunc(out, func(a, b repo.Hash) int { return bytes.Compare(a[:], b[:]) })
	if len(out) > maxExtraBases {
		out = out[:maxExtraBases]
	}
	return out
}

// get reads an object, counting the work.
func (w *walker) get(h repo.Hash) (repo.Kind, []byte, error) {
	kind, payload, err := w.rd.Get(h)
	if err != nil {
		return "", nil, err
	}
	switch kind {
	case repo.KindCommit:
		w.stats.Commits++
	case repo.KindTree:
		w.stats.Trees++
	}
	w.stats.Bytes += int64(len(payload))
	return kind, payload, nil
}

func (w *walker) addKnown(h repo.Hash) error {
	// A tag's closure includes its object: peel, marking each level known.
	for hops := 0; !h.IsZero(); hops++ {
		if hops > 16 {
			return nil // a tag chain this long is not worth following; superset is allowed
		}
		if n := w.commits[h]; n != nil {
			w.paintNode(n, fromKnown)
			return nil
		}
		kind, payload, err := w.get(h)
		if errors.Is(err, repo.ErrNotFound) {
			return nil // the client holds something we do not: irrelevant to what it lacks
		}
		if err != nil {
			return fmt.Errorf("read known %s: %w", h.Short(), err)
		}
		switch kind {
		case repo.KindCommit:
			// An undecodable known commit is ignored: a superset is allowed.
			if n, err := w.newCommitNode(h, payload); err == nil {
				n.payload = nil
				w.knownTips = append(w.knownTips, n)
				n.src = len(w.knownTips)
				w.paintNode(n, fromKnown)
			}
			return nil
		case repo.KindTag:
			w.knownObj[h] = kind.Code()
			// An undecodable known tag ends the peel (zero h), as a
			// superset is allowed; otherwise go on with its object.
			h = repo.Hash{}
			if t, err := repo.DecodeTag(payload); err == nil {
				h = t.Object
			}
		default:
			w.knownObj[h] = kind.Code()
			return nil
		}
	}
	return nil
}

func (w *walker) addRoot(h repo.Hash) error {
	for hops := 0; ; hops++ {
		if w.skip(h) {
			return nil
		}
		if n := w.commits[h]; n != nil {
			w.paintNode(n, fromRoot)
			return nil
		}
		kind, payload, err := w.get(h)
		if errors.Is(err, repo.ErrNotFound) {
			if w.chk != nil {
				return w.problem(h, "", err)
			}
			if hops == 0 {
				return &RootNotFoundError{Hash: h}
			}
			return fmt.Errorf("tag target %s: %w (%w)", h, err, ErrIncomplete)
		}
		if err != nil {
			return fmt.Errorf("read root %s: %w", h.Short(), err)
		}
		switch kind {
		case repo.KindCommit:
			n, err := w.newCommitNode(h, payload)
			if err != nil {
				return w.problem(h, kind, err)
			}
			w.paintNode(n, fromRoot)
			return nil
		case repo.KindTree:
			// Emitted when the tree stack reads it, like every tree.
			w.mark(h, kind.Code())
			w.trees = append(w.trees, treeWork{hash: h})
			return nil
		case repo.KindTag:
			if err := w.emit(h, kind, payload); err != nil {
				return err
			}
			t, err := repo.DecodeTag(payload)
			if err != nil {
				return w.problem(h, kind, fmt.Errorf("tag %s: %w (%w)", h, err, ErrIncomplete))
			}
			if hops > 16 {
				return w.problem(h, kind, fmt.Errorf("tag %s: chain of more than 16 tags (%w)", h, ErrIncomplete))
			}
			h = t.Object
		default: // blob, symref: no links
			return w.emit(h, kind, payload)
		}
	}
}

func (w *walker) newCommitNode(h repo.Hash, payload []byte) (*commitNode, error) {
	c, err := repo.DecodeCommit(payload)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w (%w)", h, err, ErrIncomplete)
	}
	n := &commitNode{hash: h, when: c.Committer.When, tree: c.Tree, parents: c.Parents, payload: payload}
	w.commits[h] = n
	return n, nil
}

// paintNode adds colour f to n and queues it when that changed something,
// so the new colour reaches its ancestors.
func (w *walker) paintNode(n *commitNode, f uint8) {
	old := n.flags
	if old|f == old {
		return
	}
	n.flags = old | f
	if n.inHeap {
		if old == fromRoot {
			w.pending-- // gained fromKnown while queued: no longer keeps the walk going
		}
		return
	}
	n.inHeap = true
	if n.flags == fromRoot {
		w.pending++
	}
	heap.Push(&w.queue, n)
}

// paint runs the commit walk and returns the missing commits, children
// before parents.
func (w *walker) paint() ([]*commitNode, error) {
	knownPops, budget := 0, w.opts.maxKnownCommits()
	var missing []*commitNode
	for w.pending > 0 {
		n := heap.Pop(&w.queue).(*commitNode)
		n.inHeap = false
		f := n.flags
		if f == fromRoot {
			w.pending--
			if !n.popped {
				n.popped = true
				n.order = w.pops
				w.pops++
				missing = append(missing, n)
			}
		} else {
			knownPops++
			n.payload = nil
			if knownPops > budget {
				continue // stop proving: what stays unproven is reported (superset)
			}
		}
		for _, p := range n.parents {
			pn := w.commits[p]
			if pn == nil {
				kind, payload, err := w.get(p)
				if err != nil || kind != repo.KindCommit {
					if f&fromKnown != 0 {
						continue // the client's closure is not ours to verify
					}
					if err == nil {
						err = fmt.Errorf("is a %s", kind)
					}
					err = fmt.Errorf("parent %s of commit %s: %w (%w)", p, n.hash.Short(), err, ErrIncomplete)
					if err := w.problem(p, repo.KindCommit, err); err != nil {
						return nil, err
					}
					continue // a check goes on without it
				}
				if pn, err = w.newCommitNode(p, payload); err != nil {
					if f&fromKnown != 0 {
						continue
					}
					if err := w.problem(p, repo.KindCommit, err); err != nil {
						return nil, err
					}
					continue
				}
			}
			if f&fromKnown != 0 && pn.src == 0 {
				pn.src = n.src
			}
			w.paintNode(pn, f)
		}
	}
	// A commit popped while it looked missing may have been reached from
	// known later (clock skew): drop it. Keep first-pop order.
	out := missing[:0]
	for _, n := range missing {
		if n.flags == fromRoot {
			out = append(out, n)
		} else {
			n.payload = nil
		}
	}
	return out, nil
}

// diffTrees processes the tree stack: each tree is compared with its bases
// by repo.DiffTree; only entries that differ from every base and were not
// reported yet are reported, and only such subtrees are opened. Trees are
// read in place when the reader lends payloads (repo.Peek): a check reads
// every new tree once, and a flat zone's apex (40 MB for a million names)
// and its base would otherwise each be copied out of the store.
func (w *walker) diffTrees() error { return w.drain(0) }

// drain processes the tree stack down to mark entries.
func (w *walker) drain(mark int) error {
	for len(w.trees) > mark {
		tw := w.trees[len(w.trees)-1]
		w.trees = w.trees[:len(w.trees)-1]
		pushed := len(w.trees)
		var stop error // from emit or a check's problem: ends the walk
		var bad error  // the tree does not decode
		var readErr error
		if tw.bases == nil {
			stop, bad, readErr = w.viewAlone(tw)
		} else if es, ok := w.diffed(tw); ok {
			stop = w.diffKnown(tw, es)
		} else {
			stop, bad, readErr = w.diffWithBases(tw)
		}
		if stop != nil {
			return stop
		}
		if readErr != nil {
			if err := w.problem(tw.hash, repo.KindTree, readErr); err != nil {
				return err
			}
			continue
		}
		if bad != nil {
			if err := w.problem(tw.hash, repo.KindTree, fmt.Errorf("%w (%w)", bad, ErrIncomplete)); err != nil {
				return err
			}
		}
		w.sortPushed(pushed)
	}
	return nil
}

// diffWithBases is diffOne for a tree that has bases, the tree and its
// bases read in place. A function of its own: the variables its closures
// capture move to the heap, and in diffTrees they would for every tree (two
// allocations per name tree in a full pull).
func (w *walker) diffWithBases(tw treeWork) (stop, bad, readErr error) {
	readErr = w.viewTree(tw.hash, func(payload []byte) error {
		return w.viewBases(tw.baseList(), nil, func(bases [][]byte) error {
			stop, bad = w.diffOne(tw, payload, bases)
			return stop
		})
	})
	return stop, bad, readErr
}

// sortPushed orders the trees queued above mark. Both ends read every new
// tree from a store keyed by hash: taking a tree's subtrees in hash order
// reads the store in key order (the 100,000 name trees of a flat zone's
// apex from a few thousand blocks instead of one block each). The stack
// pops the last first, so descending.
func (w *walker) sortPushed(mark int) {
	repo.SortByHash(w.trees[mark:], func(tw *treeWork) *repo.Hash { return &tw.hash })
	slices.Reverse(w.trees[mark:])
}

// A check takes the subtrees of a tree without bases in passes when there
// may be more than chunkTrees of them, each pass those whose hash falls in
// the next slice of the hash space, queued, sorted and walked before the
// next pass: a full pull's apex links a million name trees, 40 MB of
// queue at once. Hash order, and so the store's key order, is kept across
// passes. A tree entry takes at least minTreeEntry bytes (FORMAT.md).
// (A variable so tests can make passes of a small tree.)
var chunkTrees = 1 << 17

const minTreeEntry = 35

// diffAloneInPasses is diffOne without bases, in passes (see chunkTrees)
// for a check's large tree; payload is lent for the whole of it.
func (w *walker) diffAloneInPasses(tw treeWork, payload []byte) (stop, bad error) {
	passes := len(payload)/minTreeEntry/chunkTrees + 1
	if w.chk == nil || passes == 1 {
		return w.diffOne(tw, payload, nil)
	}
	if err := w.emit(tw.hash, repo.KindTree, payload); err != nil {
		return err, nil
	}
	for i := range passes {
		lo, hi := uint64(i)<<32/uint64(passes), uint64(i+1)<<32/uint64(passes)
		mark := len(w.trees)
		err := repo.DiffTree(tw.hash, payload, nil, func(kind repo.EntryKind, h repo.Hash, same []repo.Hash) error {
			if kind.ObjectKind() == repo.KindTree {
				if x := uint64(binary.BigEndian.Uint32(h[:4])); x < lo || x >= hi {
					return nil
				}
			} else if i > 0 {
				return nil // leaves: in the first pass
			}
			stop = w.diffEntry(kind, h, same)
			return stop
		})
		if stop != nil {
			return stop, nil
		}
		if err != nil {
			return nil, err // what this pass queued is walked after the problem, as diffOne's
		}
		w.sortPushed(mark)
		if stop = w.drain(mark); stop != nil {
			return stop, nil
		}
	}
	return nil, nil
}

// diffOne emits tw's tree, then compares
// it with its bases, emitting and queueing what differs. stop is an error
// from emit or a check's problem (it ends the walk), bad one from DiffTree
// (the tree does not decode).
func (w *walker) diffOne(tw treeWork, payload []byte, bases [][]byte) (stop, bad error) {
	if err := w.report(tw.hash, repo.KindTree, payload); err != nil {
		return err, nil
	}
	err := repo.DiffTree(tw.hash, payload, bases, func(kind repo.EntryKind, h repo.Hash, same []repo.Hash) error {
		stop = w.diffEntry(kind, h, same)
		return stop
	})
	if stop != nil {
		return stop, nil
	}
	return nil, err
}

// diffEntry handles one entry of a tree that differs from its bases:
// skipped when reported or known already, queued when a subtree,
// emitted otherwise.
func (w *walker) diffEntry(kind repo.EntryKind, h repo.Hash, same []repo.Hash) error {
	want := kind.ObjectKind()
	if w.chk == nil {
		// The server's walk: marked or known is all skipLinked asks.
		if _, known := w.knownObj[h]; known || !w.markNew(h, want.Code()) {
			return nil
		}
		if want == repo.KindTree {
			w.trees = append(w.trees, newTreeWork(h, same))
			return nil
		}
		return w.report(h, want, nil)
	}
	if skip, err := w.skipLinked(h, want); skip || err != nil {
		return err
	}
	if want == repo.KindTree {
		w.mark(h, want.Code())
		w.trees = append(w.trees, newTreeWork(h, same))
		return nil
	}
	return w.emit(h, want, nil)
}

// diffed asks a check's reader (Differ) for tw's comparison with its
// bases.
func (w *walker) diffed(tw treeWork) ([]DiffEntry, bool) {
	d, ok := w.rd.(Differ)
	if !ok || w.chk == nil {
		return nil, false
	}
	return d.Diffed(tw.hash, tw.baseList())
}

// diffKnown is diffOne for a tree whose comparison the reader knew.
func (w *walker) diffKnown(tw treeWork, es []DiffEntry) error {
	if err := w.emit(tw.hash, repo.KindTree, nil); err != nil {
		return err
	}
	for _, e := range es {
		if err := w.diffEntry(e.Kind, e.Hash, e.Same); err != nil {
			return err
		}
	}
	return nil
}

// viewAlone diffs tw, a tree without bases, read in place like viewTree
// (a full pull's apex is one, 40 MB for a million names, which a copy
// would double) through the one callback the walker keeps (a closure per
// tree would be an allocation each, and a full pull diffs one small tree
// per name this way).
func (w *walker) viewAlone(tw treeWork) (stop, bad, readErr error) {
	if w.aloneFn == nil {
		w.aloneFn = w.diffAlone
	}
	// A check walks a large tree's subtrees while it is lent
	// (diffAloneInPasses), which reads more trees through here.
	outer := w.alone
	w.alone = aloneState{tw: tw}
	err := repo.Peek(w.rd, tw.hash, w.aloneFn)
	a := w.alone
	w.alone = outer
	switch {
	case a.called:
		return a.stop, a.bad, nil
	case err != nil:
		return nil, nil, fmt.Errorf("tree %s: %w (%w)", tw.hash, err, ErrIncomplete)
	}
	return nil, nil, fmt.Errorf("object %s is a %s where a tree is linked (%w)", tw.hash, a.kind, ErrIncomplete)
}

// aloneState is what viewAlone's callback (diffAlone) reads and reports.
type aloneState struct {
	tw        treeWork
	kind      repo.Kind
	called    bool
	stop, bad error
}

func (w *walker) diffAlone(kind repo.Kind, payload []byte) error {
	w.alone.kind = kind
	if kind != repo.KindTree {
		return nil
	}
	w.alone.called = true
	w.stats.Trees++
	w.stats.Bytes += int64(len(payload))
	stop, bad := w.diffAloneInPasses(w.alone.tw, payload)
	w.alone.stop, w.alone.bad = stop, bad
	return stop
}

// viewTree calls fn with the payload of tree h, lent by the reader when it
// can (valid only while fn runs): a tree compared with bases is where the
// large ones are (a flat zone's apex and the one it replaces). It returns
// why h could not be read as a tree (fn not called: absent, unreadable,
// another kind), or fn's error.
func (w *walker) viewTree(h repo.Hash, fn func(payload []byte) error) error {
	called := false
	var got repo.Kind
	err := repo.Peek(w.rd, h, func(kind repo.Kind, payload []byte) error {
		got = kind
		if kind != repo.KindTree {
			return nil
		}
		called = true
		w.stats.Trees++
		w.stats.Bytes += int64(len(payload))
		return fn(payload)
	})
	switch {
	case called:
		return err
	case err != nil:
		return fmt.Errorf("tree %s: %w (%w)", h, err, ErrIncomplete)
	}
	return fmt.Errorf("object %s is a %s where a tree is linked (%w)", h, got, ErrIncomplete)
}

// viewBases calls fn once with the payloads of the base trees that read
// as trees (lent, like viewTree's), appended to acc. A base that cannot be
// read is left out: a base is known to the client or reported, so
// comparing with less only reports more (a superset).
func (w *walker) viewBases(bases []repo.Hash, acc [][]byte, fn func(bases [][]byte) error) error {
	if len(bases) == 0 {
		return fn(acc)
	}
	called := false
	err := w.viewTree(bases[0], func(p []byte) error {
		called = true
		return w.viewBases(bases[1:], append(acc, p), fn)
	})
	if called {
		return err
	}
	return w.viewBases(bases[1:], acc, fn)
}
