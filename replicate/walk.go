package replicate

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
// given that it holds known with their complete closures?" (DESIGN §4.3).
//
// Exact guarantees of Walk:
//
//   - Never a subset: every object reachable from a root is either reported
//     or in the closure of some known hash. A client that fetches what is
//     reported ends up with complete closures.
//   - Usually exact, sometimes a superset: an object that the client holds
//     can be reported when it is only reachable from known through a path
//     the walk did not look at (a subtree moved to another name, content
//     shared between zones, history beyond WalkOptions.MaxKnownCommits on
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
//     explicit heap and stack; the seen set holds only reported hashes.
//
// One caveat on "independent of zone size": a tree is one object, so the
// trees on the changed path are read whole. In a flat zone (every name one
// label below the apex) the apex tree has one entry per name and the diff
// scans it (a byte comparison without allocation, but proportional to its
// size); objects visited stay constant.

// WalkOptions bound one walk. The zero value uses the defaults.
type WalkOptions struct {
	// MaxKnownCommits bounds how many commits reachable from known the walk
	// reads while proving that a commit reachable from a root is already
	// held by the client. Beyond it the walk stops looking and reports
	// unproven commits as missing (a superset, never a subset). Default
	// 100,000.
	MaxKnownCommits int
}

func (o WalkOptions) maxKnownCommits() int {
	if o.MaxKnownCommits > 0 {
		return o.MaxKnownCommits
	}
	return 100000
}

// WalkStats counts the work one walk did.
type WalkStats struct {
	Commits int   // commit objects read (both sides)
	Trees   int   // tree objects read (new trees and their bases)
	Bytes   int64 // payload bytes read
	Missing int   // objects reported
}

// Visited is the number of objects the walk read.
func (s WalkStats) Visited() int { return s.Commits + s.Trees }

// RootNotFoundError says a walk root is not in the primary (HTTP 404).
type RootNotFoundError struct{ Hash repo.Hash }

func (e *RootNotFoundError) Error() string {
	return fmt.Sprintf("root %s not in primary", e.Hash.Short())
}

// errIncomplete marks an object reachable from a root that the primary's
// own store lacks or cannot decode: the primary is damaged (HTTP 500).
var errIncomplete = errors.New("primary store is incomplete or corrupt")

// EmitFunc receives each missing object once. payload is the object's
// payload when the walk had to read it anyway (commits, trees, roots), nil
// otherwise (blobs below a tree are never read by the walk).
type EmitFunc func(h repo.Hash, kind repo.Kind, payload []byte) error

// Walk reports, through emit, every object reachable from roots that is not
// in the closure of known (see the guarantees above). Objects come before
// the objects they link to. The all-zero root is skipped; a root rd does
// not hold is a *RootNotFoundError; known hashes rd does not hold are
// ignored. An error returned by emit stops the walk and is returned.
func Walk(rd repo.Reader, roots, known []repo.Hash, opts WalkOptions, emit EmitFunc) (WalkStats, error) {
	return walk(rd, roots, known, opts, emit, nil)
}

// walkCheck turns the walk into a check of rd's own closures: the client
// runs it over its store after a transfer (verify.go), with known = its
// local tips, to find what a target still lacks. Objects are then looked
// at, not trusted: problem is told about every object the walk needed and
// could not use (absent, err wrapping repo.ErrNotFound; of another kind
// than its link expects; undecodable), and the walk goes on without it
// instead of failing; a non-nil return stops the walk with that error.
// Objects linked again with another kind than they were reported with
// are problems too. Blobs are reported to emit but not remembered (they
// link nothing, and emit reads each one), so a check of a million-record
// zone keeps only its trees and commits in memory.
type walkCheck struct {
	problem func(h repo.Hash, want repo.Kind, err error) error
}

func walk(rd repo.Reader, roots, known []repo.Hash, opts WalkOptions, emit EmitFunc, chk *walkCheck) (WalkStats, error) {
	w := &walker{
		rd:       rd,
		opts:     opts,
		emitFn:   emit,
		chk:      chk,
		seen:     make(map[repo.Hash]uint8),
		knownObj: make(map[repo.Hash]uint8),
		commits:  make(map[repo.Hash]*commitNode),
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
// or already reported.
type treeWork struct {
	hash  repo.Hash
	bases []repo.Hash
}

type walker struct {
	rd     repo.Reader
	opts   WalkOptions
	emitFn EmitFunc
	chk    *walkCheck // nil: the server's walk
	stats  WalkStats

	seen     map[repo.Hash]uint8 // reported, with their kind (walkKind)
	knownObj map[repo.Hash]uint8 // known non-commit objects (closures held), with their kind
	commits  map[repo.Hash]*commitNode
	queue    commitHeap
	pending  int // queued nodes painted fromRoot only
	pops     int
	trees    []treeWork

	knownTips []*commitNode // known commits as the client sent them
}

// maxExtraBases caps how many known tips' trees a missing commit's tree is
// also compared with (beyond its parents' trees).
const maxExtraBases = 4

func (w *walker) emit(h repo.Hash, kind repo.Kind, payload []byte) error {
	if w.chk == nil || kind != repo.KindBlob {
		w.seen[h] = walkKind(kind)
	}
	w.stats.Missing++
	return w.emitFn(h, kind, payload)
}

// walkKind packs a kind into the byte the walk's sets keep.
func walkKind(k repo.Kind) uint8 {
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

func (w *walker) skip(h repo.Hash) bool {
	if _, ok := w.seen[h]; ok {
		return true
	}
	_, ok := w.knownObj[h]
	return ok
}

// skipLinked is skip for an object linked as want. In a check, an object
// already reported (or known) as another kind is a problem: one of its
// links is wrong, and the read that would show which is not repeated.
func (w *walker) skipLinked(h repo.Hash, want repo.Kind) (bool, error) {
	k, ok := w.seen[h]
	if !ok {
		k, ok = w.knownObj[h]
	}
	if !ok {
		return false, nil
	}
	if w.chk != nil && k != walkKind(want) {
		return true, w.problem(h, want, fmt.Errorf("object %s is linked as a %s and as a %s: %w", h, codeKind(k), want, repo.ErrCorrupt))
	}
	return true, nil
}

func codeKind(k uint8) repo.Kind {
	return [...]repo.Kind{"unknown", repo.KindBlob, repo.KindTree, repo.KindCommit, repo.KindTag, repo.KindSymref}[min(int(k), 5)]
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
	extra := w.relevantKnownTrees()
	for _, n := range missing {
		if skip, err := w.skipLinked(n.tree, repo.KindTree); skip || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		bases := make([]repo.Hash, 0, len(n.parents)+len(extra))
		for _, p := range n.parents {
			if pn := w.commits[p]; pn != nil { // always: every parent of a missing commit was painted
				bases = appendUnique(bases, pn.tree)
			}
		}
		for _, t := range extra {
			bases = appendUnique(bases, t)
		}
		if slices.Contains(bases, n.tree) {
			continue // that tree is known or reported, with its closure
		}
		if err := w.emit(n.tree, repo.KindTree, nil); err != nil {
			return err
		}
		w.trees = append(w.trees, treeWork{hash: n.tree, bases: bases})
	}
	return w.diffTrees()
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
		out = appendUnique(out, w.knownTips[n.src-1].tree)
	}
	// Map order is random; keep the walk deterministic.
	slices.SortFunc(out, func(a, b repo.Hash) int { return bytes.Compare(a[:], b[:]) })
	if len(out) > maxExtraBases {
		out = out[:maxExtraBases]
	}
	return out
}

func appendUnique(s []repo.Hash, h repo.Hash) []repo.Hash {
	for _, x := range s {
		if x == h {
			return s
		}
	}
	return append(s, h)
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
			w.knownObj[h] = walkKind(kind)
			// An undecodable known tag ends the peel (zero h), as a
			// superset is allowed; otherwise go on with its object.
			h = repo.Hash{}
			if t, err := repo.DecodeTag(payload); err == nil {
				h = t.Object
			}
		default:
			w.knownObj[h] = walkKind(kind)
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
			return fmt.Errorf("tag target %s: %w (%w)", h, err, errIncomplete)
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
			if err := w.emit(h, kind, payload); err != nil {
				return err
			}
			w.trees = append(w.trees, treeWork{hash: h})
			return nil
		case repo.KindTag:
			if err := w.emit(h, kind, payload); err != nil {
				return err
			}
			t, err := repo.DecodeTag(payload)
			if err != nil {
				return w.problem(h, kind, fmt.Errorf("tag %s: %w (%w)", h, err, errIncomplete))
			}
			if hops > 16 {
				return w.problem(h, kind, fmt.Errorf("tag %s: chain of more than 16 tags (%w)", h, errIncomplete))
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
		return nil, fmt.Errorf("commit %s: %w (%w)", h, err, errIncomplete)
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
					err = fmt.Errorf("parent %s of commit %s: %w (%w)", p, n.hash.Short(), err, errIncomplete)
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

// diffTrees processes the tree stack: each tree is compared entry by entry
// with its bases (sorted merge over the raw payloads, no allocation per
// entry); only entries that differ from every base and were not reported
// yet are reported, and only such subtrees are opened.
func (w *walker) diffTrees() error {
	var bases [][]byte
	var its []treeIter
	for len(w.trees) > 0 {
		tw := w.trees[len(w.trees)-1]
		w.trees = w.trees[:len(w.trees)-1]
		pushed := len(w.trees)
		_, payload, err := w.getTree(tw.hash)
		if err != nil {
			if err := w.problem(tw.hash, repo.KindTree, err); err != nil {
				return err
			}
			continue
		}
		bases = bases[:0]
		for _, b := range tw.bases {
			_, bp, err := w.getTree(b)
			if err != nil {
				// A base is known to the client or reported; if we cannot
				// read it we simply compare against less (superset).
				continue
			}
			bases = append(bases, bp)
		}
		it, err := newTreeIter(tw.hash, payload)
		if err != nil {
			if err := w.problem(tw.hash, repo.KindTree, err); err != nil {
				return err
			}
			continue
		}
		its = its[:0]
		for _, bp := range bases {
			bit, err := newTreeIter(repo.ZeroHash, bp)
			if err != nil {
				continue
			}
			if bit.next() {
				its = append(its, bit)
			}
		}
		for it.next() {
			var childBases []repo.Hash
			equal := false
			for i := range its {
				bi := &its[i]
				for !bi.done && entryCmp(bi.kind, bi.name, it.kind, it.name) < 0 {
					bi.next()
				}
				if bi.done || bi.kind != it.kind || !bytes.Equal(bi.name, it.name) {
					continue
				}
				if bytes.Equal(bi.hash, it.hash) {
					equal = true
					skipIdentical(&it, bi)
					break
				}
				if it.kind == byte(repo.EntrySubtree) {
					var bh repo.Hash
					copy(bh[:], bi.hash)
					childBases = appendUnique(childBases, bh)
				}
			}
			if equal {
				continue
			}
			var h repo.Hash
			copy(h[:], it.hash)
			want := repo.KindBlob
			if it.kind == byte(repo.EntrySubtree) {
				want = repo.KindTree
			}
			if skip, err := w.skipLinked(h, want); skip || err != nil {
				if err != nil {
					return err
				}
				continue
			}
			if it.kind == byte(repo.EntrySubtree) {
				if err := w.emit(h, repo.KindTree, nil); err != nil {
					return err
				}
				w.trees = append(w.trees, treeWork{hash: h, bases: childBases})
			} else if err := w.emit(h, repo.KindBlob, nil); err != nil {
				return err
			}
		}
		if it.err != nil {
			if err := w.problem(tw.hash, repo.KindTree, it.err); err != nil {
				return err
			}
		}
		if w.chk != nil {
			// A check reads every new tree from a store keyed by hash:
			// taking a tree's subtrees in hash order reads the store in
			// key order (the 100,000 name trees of a flat zone's apex
			// from a few thousand blocks instead of one block each). The
			// stack pops the last first, so descending.
			slices.SortFunc(w.trees[pushed:], func(a, b treeWork) int { return bytes.Compare(b.hash[:], a.hash[:]) })
		}
	}
	return nil
}

// skipIdentical moves it and bi, whose current entries are equal, over the
// entries that follow byte for byte identically in both trees, leaving both
// on the last such entry (equal, so it reports nothing). In a flat zone the
// apex tree of a one-record change differs from its base in one entry out
// of 100,000s; this turns the merge of the rest (two parses and several
// comparisons per entry) into one bulk byte comparison and a parse of it
// alone. The entries skipped in it are still parsed with it.next, so a
// corrupt tree fails exactly as before. Those in bi are not, and need not
// be: they are the same bytes, read from the same preceding entry, so
// bi.next would accept exactly what it.next accepted (and on an error the
// walk stops anyway). The other bases are not moved here; the merge loop
// advances them when it next needs them, to the same positions.
func skipIdentical(it, bi *treeIter) {
	start := it.off
	shift := bi.off - it.off
	end := start + commonPrefix(it.p[start:], bi.p[bi.off:])
	var n uint64
	last := -1
	for it.left > 0 && n < bi.left {
		off := it.off
		// Only whole entries inside the identical run; next() checks the
		// rest (kind, length, bounds, order) as always.
		if end-off < 2 || off+2+int(it.p[off+1])+32 > end {
			break
		}
		if !it.next() {
			return // it.err is set; the walk fails on it
		}
		last = off
		n++
	}
	if n == 0 {
		return
	}
	l := len(it.name)
	bo := last + shift
	bi.off = it.off + shift
	bi.left -= n
	bi.idx += int(n)
	bi.kind, bi.name, bi.hash = bi.p[bo], bi.p[bo+2:bo+2+l], bi.p[bo+2+l:bo+2+l+32]
}

// commonPrefix returns the length of the longest common prefix of a and b,
// comparing in blocks first (memequal is vectorised; a byte loop over a
// 4 MB apex tree is not).
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	const block = 512
	i := 0
	for i+block <= n && bytes.Equal(a[i:i+block], b[i:i+block]) {
		i += block
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

func (w *walker) getTree(h repo.Hash) (repo.Kind, []byte, error) {
	kind, payload, err := w.get(h)
	if err != nil {
		return "", nil, fmt.Errorf("tree %s: %w (%w)", h, err, errIncomplete)
	}
	if kind != repo.KindTree {
		return "", nil, fmt.Errorf("object %s is a %s where a tree is linked (%w)", h, kind, errIncomplete)
	}
	return kind, payload, nil
}

func entryCmp(ak byte, an []byte, bk byte, bn []byte) int {
	if ak != bk {
		if ak < bk {
			return -1
		}
		return 1
	}
	return bytes.Compare(an, bn)
}

// treeIter reads the entries of a tree payload in place (FORMAT.md), with
// the same strictness as repo.DecodeTree: version, bounds, known kinds,
// strictly increasing order.
type treeIter struct {
	tree repo.Hash
	p    []byte
	off  int
	left uint64
	idx  int
	done bool
	err  error

	kind byte
	name []byte
	hash []byte
}

func newTreeIter(h repo.Hash, p []byte) (treeIter, error) {
	it := treeIter{tree: h, p: p}
	if len(p) == 0 || p[0] != 1 {
		return it, fmt.Errorf("tree %s: bad version or empty payload: %w (%w)", h, repo.ErrCorrupt, errIncomplete)
	}
	count, n := binary.Uvarint(p[1:])
	// Only the shortest varint is canonical (binary.Uvarint also accepts
	// padded forms such as 80 00); repo.DecodeTree rejects the others too.
	var tmp [binary.MaxVarintLen64]byte
	if n <= 0 || n != binary.PutUvarint(tmp[:], count) || count > uint64(len(p)-1-n)/35 {
		return it, fmt.Errorf("tree %s: bad entry count: %w (%w)", h, repo.ErrCorrupt, errIncomplete)
	}
	it.off, it.left = 1+n, count
	return it, nil
}

// next advances to the next entry; false at the end or on error (it.err).
func (it *treeIter) next() bool {
	if it.done {
		return false
	}
	if it.left == 0 {
		it.done = true
		if it.off != len(it.p) {
			it.err = fmt.Errorf("tree %s: trailing bytes: %w (%w)", it.tree, repo.ErrCorrupt, errIncomplete)
		}
		return false
	}
	p, off := it.p, it.off
	if len(p)-off < 2 {
		return it.fail("truncated")
	}
	k, l := p[off], int(p[off+1])
	if k > byte(repo.EntryLeaf) || l == 0 || len(p)-off-2 < l+32 {
		return it.fail("bad entry")
	}
	name := p[off+2 : off+2+l]
	if it.idx > 0 && entryCmp(it.kind, it.name, k, name) >= 0 {
		return it.fail("entries out of order or duplicated")
	}
	it.kind, it.name, it.hash = k, name, p[off+2+l:off+2+l+32]
	it.off = off + 2 + l + 32
	it.left--
	it.idx++
	return true
}

func (it *treeIter) fail(why string) bool {
	it.done = true
	it.err = fmt.Errorf("tree %s: entry %d: %s: %w (%w)", it.tree, it.idx, why, repo.ErrCorrupt, errIncomplete)
	return false
}
