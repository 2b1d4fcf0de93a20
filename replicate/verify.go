package replicate

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// The closure check: the only thing that lets a ref move. It runs after
// every round of the transfer, once the batch is flushed and synced, and
// checks what each target reaches, whatever transport brought it and
// whatever the primary claimed: against the store, or, for an object this
// pull stored, against its receipt (p.got), which is as good once the
// batch has synced: the object was hash-verified, checked against the
// kinds its links allowed and decoded strictly before it was queued.
//
// Each target is checked with the project's one walk (walk.Check) run
// over the local store in check mode: roots = the target, known = the
// local tips of its zone from before the pull, plus the targets of that
// zone already checked in this pull. Known tips are complete closures by
// invariant (every ref a pull moved passed this check), so, as on the
// server, the walk costs in proportion to what changed: it diffs new trees
// against the known trees path by path and stops at equal hashes. Every
// object it reaches is verified: present, of the kind its link expects (a
// subtree a tree, a leaf a blob, a commit's tree a tree, its parents
// commits, what a tag names what its type says), decoding strictly. The
// walker reads commits and trees itself (it needs their links); a blob is
// read here unless this pull stored it. An object that was already local
// (a known tip's closure aside), say left by a killed earlier pull, is
// always read.

// errStopCheck ends the walk of a target whose fate is decided.
var errStopCheck = errors.New("closure check decided")

// closureCheck is the check of one target.
type closureCheck struct {
	p      *puller
	r      repo.Reader
	absent map[repo.Hash]kindSet // objects the closure needs that the store lacks
	bad    error                 // an object present but unusable: the target fails

	blobs []repo.Hash // blobs reached, read in hash order in batches (checkBlobs)

	objects int   // objects of this pull the target reached first (credited, pending in p.got)
	bytes   int64 // and their payload bytes
}

// checkClosures checks every target not yet decided and decides it:
// complete (it may move; the objects this pull stored that it reaches
// first are counted for it), failed (it reaches an object that is
// unusable, or absent and already given up on: res.Err names it), or
// incomplete. It returns what the incomplete ones lack, for the next
// round; the kinds their links allow go into p.expect. asked holds, for
// each object a round asked for, the kinds it would have accepted then:
// an object is asked for again only when a link now allows a kind it did
// not (a branch pointed at it as a commit, and a tree reached later names
// it as a tree), so the rounds end.
func (p *puller) checkClosures(targets []*item, zoneKnown map[string][]repo.Hash, asked map[repo.Hash]kindSet) ([]repo.Hash, error) {
	ask := map[repo.Hash]kindSet{}
	err := p.c.Local.View(func(r repo.Reader) error {
		for _, it := range targets {
			if it.checked || it.res.Err != nil {
				continue
			}
			if err := p.ctx.Err(); err != nil {
				return err
			}
			cc := &closureCheck{p: p, r: r, absent: map[repo.Hash]kindSet{}}
			check := cc.run
			if p.sealed { // every target is the sealed root (seal)
				check = cc.sealed
			}
			if err := check(it, zoneKnown[it.res.Zone]); err != nil {
				return err
			}
			if cc.bad == nil && len(cc.absent) == 0 {
				it.checked = true
				p.got.settle(true)
				it.res.Objects += cc.objects
				it.res.Bytes += cc.bytes
				zoneKnown[it.res.Zone] = repo.AppendUnique(zoneKnown[it.res.Zone], it.new)
				continue
			}
			p.got.settle(false)
			if cc.bad == nil {
				cc.bad = cc.lacking(asked)
			}
			if cc.bad != nil {
				it.res.Err = targetError(it, cc.bad)
				continue
			}
			for h, want := range cc.absent {
				ask[h] |= want
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pull: checking closures: %w", err)
	}
	need := make([]repo.Hash, 0, len(ask))
	for h, want := range ask {
		p.expect[h] |= want
		asked[h] |= p.expect[h]
		delete(p.failed, h) // asked with more kinds than when it failed
		need = append(need, h)
	}
	slices.SortFunc(need, func(a, b repo.Hash) int { return bytes.Compare(a[:], b[:]) })
	return need, nil
}

// targetError says which ref failed on what; a pin is named with its hash.
func targetError(it *item, err error) error {
	if it.pinned {
		return fmt.Errorf("pin %s/%s=%s: %w", it.res.Zone, it.res.Name, it.new, err)
	}
	return err
}

// lacking decides a target with absent objects. It fails (with the first
// in hash order, so the message is stable) when one of them arrived and is
// of a kind its link here does not allow, or could not be had, or was
// asked for and not delivered, with no kind its link here allows that was
// not allowed then. Otherwise it returns nil, and the next round fetches
// them.
func (cc *closureCheck) lacking(asked map[repo.Hash]kindSet) error {
	hs := make([]repo.Hash, 0, len(cc.absent))
	for h := range cc.absent {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b repo.Hash) int { return bytes.Compare(a[:], b[:]) })
	p := cc.p
	for _, h := range hs {
		want := cc.absent[h]
		if k, ok := p.actual[h]; ok && !want.has(k) {
			return fmt.Errorf("object %s is a %s, but it is linked as %s: %w", h, k, want, errWrongKind)
		}
		f, failed := p.failed[h]
		prev, wasAsked := asked[h]
		if failed {
			prev |= f.want
		}
		if !failed && !wasAsked || prev|want != prev {
			continue // never asked for with the kinds allowed here
		}
		why := f.err
		var bad *badObject
		if errors.As(why, &bad) {
			return why // it came, and says itself why it cannot be used
		}
		if !failed {
			why = errors.New("the primary did not deliver it when asked")
		}
		if p.streamErr != nil {
			why = fmt.Errorf("%w (earlier, %v)", why, p.streamErr)
		}
		return fmt.Errorf("object %s (linked as %s) is missing: %w", h, want, why)
	}
	return nil
}

// run checks one target: its root (and the tags it leads through) by the
// rules for refs, then its closure with the walker.
func (cc *closureCheck) run(it *item, known []repo.Hash) error {
	ok, err := cc.root(it)
	if err != nil || !ok {
		return err
	}
	_, err = walk.Check(receiptReader{cc.r, &cc.p.got}, []repo.Hash{it.new}, known, cc.emit, cc.problem)
	cc.p.got.clearMarks()
	if err == nil {
		err = cc.checkBlobs()
	}
	if errors.Is(err, errStopCheck) {
		return nil
	}
	return err
}

// A first pull can be proven complete without the walk. When the store
// held no object as the pull began, and one pack stream brought the
// closure of one root, the stream's own bookkeeping (packState) has seen
// every link the walk would follow, and checked each as the walk would:
//
//   - Every object came wanted (the root, or linked by an object received
//     before it), hash-verified, decoded strictly, of a kind its links
//     allow; sealed also requires that they allowed exactly that kind, so
//     no link to it names another.
//   - Every link of every object received was either wanted, and then
//     satisfied by an object of that kind, or named an object received
//     already, and was compared with its kind then. With nothing local
//     at the start, no link was skipped for a base tree (packState.bases)
//     or answered by the store.
//   - No wanted link was left when the streams ended (received.wanted).
//
// So the receipts are exactly the root's closure, complete and sound, and
// the walk would find nothing absent or wrong: for a flat zone of a
// million names it re-reads a million trees to say so (2.3 s of a 15 s
// pull). Any doubt seals nothing (p.sealed false), and the walk checks as
// before: a stream stopped or refused, a link of another kind, a link
// left wanted, more roots than one or a target at a local tip (the
// credits per target are the walk's), objects already stored, or a later
// round (batch and GET do not follow links).

// seal decides whether this pull may be proven by its stream (sealed):
// it pulls one root by pack into a store without objects, and every
// target is that root. (A target at a local tip is no root, and is
// checked by the walk in a later round: it would be credited again with
// what the sealed target was credited with, as no receipt records it.
// With no object stored, such a tip is a ref naming an object the store
// lacks.) Trees are then not kept for the check, which should not read
// them.
func (p *puller) seal(roots []repo.Hash, targets []*item) error {
	p.sealed = false
	if !p.usePack || len(roots) != 1 {
		return nil
	}
	for _, it := range targets {
		if it.new != roots[0] {
			return nil
		}
	}
	has, err := p.c.Local.HasObjects()
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	p.sealed = !has
	p.got.noKeep = p.sealed
	return nil
}

// sealed decides a target of a sealed pull: its root is checked as refs
// are, and the first target checked is credited with every object the
// pull stored (all of them its closure; another target can only share the
// root, and reaches nothing first).
func (cc *closureCheck) sealed(it *item, _ []repo.Hash) error {
	ok, err := cc.root(it)
	if err != nil || !ok {
		return err
	}
	if !cc.p.sealCredited {
		cc.p.sealCredited = true
		cc.objects, cc.bytes = cc.p.objects, cc.p.bytes
	}
	if l := cc.p.c.opts.Logger; l != nil {
		l.Debug("closure proven by the pack stream (first pull into an empty store)", "ref", it.res.Zone+"/"+it.res.Name, "objects", cc.p.objects)
	}
	return nil
}

// receiptReader is the store as the walk of a closure check reads it: a
// tree this pull stored and kept (received.tree) comes from memory, with
// the bytes that were verified and stored; everything else from the store.
type receiptReader struct {
	rd  repo.Reader
	got *received
}

func (r receiptReader) Get(h repo.Hash) (repo.Kind, []byte, error) {
	if p, ok := r.got.tree(h); ok {
		return repo.KindTree, p, nil
	}
	return r.rd.Get(h)
}

func (r receiptReader) Has(h repo.Hash) (bool, error) {
	if r.got.has(h) {
		return true, nil
	}
	return r.rd.Has(h)
}

// Diffed makes the check's walk take the comparison of a tree the pull
// received with the tree it replaces, made as it arrived (treeDiffs). It
// vouches for the tree with its receipt.
func (r receiptReader) Diffed(h repo.Hash, bases []repo.Hash) ([]walk.DiffEntry, bool) {
	es, ok := r.got.diffs.get(h, bases)
	if !ok || !r.got.has(h) {
		return nil, false
	}
	return es, true
}

// Marked and Mark keep the walk's seen set in the receipts (walkMarks).
func (r receiptReader) Marked(h repo.Hash) (repo.Kind, bool) { return r.got.marked(h) }

func (r receiptReader) Mark(h repo.Hash, kind repo.Kind) { r.got.mark(h, kind) }

// Peek lends payloads as the store's reader does, so the walk reads the
// trees it compares in place either way.
func (r receiptReader) Peek(h repo.Hash, fn func(kind repo.Kind, payload []byte) error) error {
	if p, ok := r.got.tree(h); ok {
		return fn(repo.KindTree, p)
	}
	return repo.Peek(r.rd, h, fn)
}

// root checks what a ref points at: a branch at a commit, a tag at a
// commit or at tag objects leading to one. It reports whether the walk may
// go on (the chain is present and sound).
func (cc *closureCheck) root(it *item) (bool, error) {
	what := "a branch"
	if it.tag {
		what = "a tag"
	}
	h, want := it.new, rootKinds(it)
	for hops := 0; ; hops++ {
		kind, payload, err := cc.r.Get(h)
		if errors.Is(err, repo.ErrNotFound) {
			cc.absent[h] = want
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !want.has(kind) {
			if hops == 0 {
				return cc.reject(fmt.Errorf("object %s is a %s, and %s must point at %s: %w", h, kind, what, want, errWrongKind))
			}
			return cc.reject(fmt.Errorf("object %s is a %s, but the tag before it names %s: %w", h, kind, want, errWrongKind))
		}
		if kind != repo.KindTag {
			return true, nil
		}
		if err := decodeObject(h, kind, payload); err != nil {
			return cc.reject(err)
		}
		if hops >= 16 {
			return cc.reject(fmt.Errorf("tag %s: a chain of more than 16 tags: %w", h, repo.ErrCorrupt))
		}
		t, _ := repo.DecodeTag(payload) // decodeObject decoded it
		h, want = t.Object, kindBit(t.Type)
	}
}

// reject decides the target failed on err: the walk does not go on, and
// nothing is wrong with the check itself.
func (cc *closureCheck) reject(err error) (bool, error) {
	cc.bad = err
	return false, nil
}

// emit receives every object the walk reaches beyond known. Commits and
// trees are read and verified by the walker (problems come to problem).
// A blob this pull stored is not read: its receipt (p.got) says it is
// local, sound and of the kind it came as, which is compared with its
// link here. Any other blob is read here, in batches. Each object this
// pull stored that no target reached before is credited to this one.
func (cc *closureCheck) emit(h repo.Hash, kind repo.Kind, payload []byte) error {
	got, size, first, ok := cc.p.got.reach(h)
	if first {
		if size < 0 {
			var err error
			if size, err = cc.size(h, payload); err != nil {
				return err
			}
		}
		cc.objects++
		cc.bytes += int64(size)
	}
	if kind != repo.KindBlob || payload != nil {
		return nil
	}
	switch {
	case !ok:
		cc.blobs = append(cc.blobs, h)
		if len(cc.blobs) >= checkBlobBatch {
			return cc.checkBlobs()
		}
	case got != repo.KindBlob:
		cc.bad = fmt.Errorf("object %s is a %s, but it is linked as a blob: %w", h, got, errWrongKind)
		return errStopCheck
	}
	return nil
}

// checkBlobBatch is how many blobs are read together: sorted, they come
// from the store in key order, so each block of the store is read once
// for all the blobs it holds rather than once per blob. 64 Ki hashes are
// 2 MiB.
const checkBlobBatch = 1 << 16

// checkBlobs reads the blobs reached so far, in hash order: present, a
// blob, decoding strictly. Each is looked at in place in the store
// (repo.Peek), not copied out.
func (cc *closureCheck) checkBlobs() error {
	slices.SortFunc(cc.blobs, func(a, b repo.Hash) int { return bytes.Compare(a[:], b[:]) })
	// One closure for the batch, not one per blob (it escapes to the
	// reader, so each would be an allocation).
	var h repo.Hash
	var bad error
	look := func(k repo.Kind, pl []byte) error {
		if k != repo.KindBlob {
			bad = fmt.Errorf("object %s is a %s, but it is linked as a blob: %w", h, k, errWrongKind)
			return nil
		}
		bad = decodeObject(h, k, pl)
		return nil
	}
	for _, h = range slices.Compact(cc.blobs) {
		bad = nil
		err := repo.Peek(cc.r, h, look)
		if errors.Is(err, repo.ErrNotFound) {
			cc.absent[h] = setBlob
			continue
		}
		if err != nil {
			return err
		}
		if bad != nil {
			cc.bad = bad
			return errStopCheck
		}
	}
	cc.blobs = cc.blobs[:0]
	return nil
}

// problem receives the objects the walker needed and could not use.
func (cc *closureCheck) problem(h repo.Hash, want repo.Kind, err error) error {
	if errors.Is(err, repo.ErrNotFound) {
		k := kindBit(want)
		if k == 0 {
			k = anyKind
		}
		cc.absent[h] |= k
		return nil
	}
	cc.bad = err
	return errStopCheck
}

// size reads the payload size of an object this pull stored that its
// receipt does not hold (bigSize or more), unless the walk read it.
func (cc *closureCheck) size(h repo.Hash, payload []byte) (int, error) {
	if payload != nil {
		return len(payload), nil
	}
	n := 0
	err := repo.Peek(cc.r, h, func(_ repo.Kind, p []byte) error {
		n = len(p)
		return nil
	})
	return n, err
}
