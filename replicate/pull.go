package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Reflog identity for refs moved by replication.
const (
	reflogAuthor = "zonegit-replicate <replicate@localhost>"
	reflogOp     = "replicate"
)

// Walk request bounds: roots per walk and known hashes sent. Known only
// makes the answer smaller (missing may be a superset), so capping it is
// safe.
const (
	walkRootsPerRequest = 512
	walkMaxKnown        = 4096
	objectAttempts      = 3 // network attempts per object on verification failures
)

// item is one ref a pull may move: a branch, a tag, or a prune.
type item struct {
	res    BranchResult
	tag    bool
	pinned bool
	old    repo.Hash
	new    repo.Hash
	needs  bool // its target closure must be fetched/verified
}

// puller holds the state of one PullWith call.
type puller struct {
	c        *Client
	ctx      context.Context
	tr       *transport
	opts     PullOptions
	useBatch bool
	usePack  bool
	targets  []*item // what this pull moves; pack streams attribute objects to them
	pack     *packState

	mu        sync.Mutex // guards idx, batch, counters, failures, claimed
	idx       *objIndex
	batch     *repo.Batch
	objects   int
	bytes     int64
	total     int
	failures  map[int]error // idx -> why the object is unusable
	claimed   []claim       // children the walk said we have
	lastProg  time.Time
	rootErr   map[repo.Hash]error
	discovery int // objects fetched because the walk's list was incomplete
}

// claim is a link to an object outside the walk's missing set: the
// primary says it is in the closure of our known tips, so it must be local.
type claim struct {
	h      repo.Hash
	want   repo.Kind
	parent int32
}

// PullWith performs one sync cycle with options and reports per branch. Any
// branch error makes it return an error listing each failed branch (a
// *PullError); the branches that succeeded stay applied and appear in the
// result.
func (c *Client) PullWith(ctx context.Context, opts PullOptions) (*PullResult, error) {
	c.pullMu.Lock()
	defer c.pullMu.Unlock()
	start := time.Now()
	var nreq atomic.Int64
	ctx = withCounter(ctx, &nreq)
	res := &PullResult{Primary: c.PrimaryURL}
	defer func() {
		res.Requests = int(nreq.Load())
		res.Duration = time.Since(start)
	}()
	if c.Local == nil {
		return res, errors.New("pull: client has no local repository")
	}
	tr, err := c.transport()
	if err != nil {
		return res, err
	}
	res.Primary = tr.base

	// 1. refs and plan.
	info, err := c.refsInfo(ctx, tr)
	if err != nil {
		return res, err
	}
	localBranches, err := c.Local.Branches("")
	if err != nil {
		return res, fmt.Errorf("pull: listing local branches: %w", err)
	}
	localTags, err := c.Local.Tags("")
	if err != nil {
		return res, fmt.Errorf("pull: listing local tags: %w", err)
	}
	refs := *info.Refs
	if !info.Has(CapTags) {
		refs.Tags = nil
	}
	plan, err := Plan(&refs, localBranches, opts)
	if err != nil {
		return res, fmt.Errorf("pull: %w", err)
	}

	var pruneTags []repo.Ref
	if opts.Prune && info.Has(CapTags) {
		// Only a primary that lists its tags can say one is gone.
		pruneTags = planTagPrune(&refs, localTags, opts)
	}

	p := &puller{c: c, ctx: ctx, tr: tr, opts: opts, useBatch: info.Has(CapBatch), usePack: info.Has(CapPack),
		failures: map[int]error{}, rootErr: map[repo.Hash]error{}}
	items := p.items(plan, localBranches, localTags, pruneTags)
	p.targets = items

	// 2-5. walk, fetch, verify closures, flush.
	if err := p.transfer(items, localBranches, localTags); err != nil {
		for _, it := range items {
			if it.needs && it.res.Err == nil {
				it.res.Err = err
			}
		}
	}
	res.Objects, res.Bytes = p.objects, p.bytes
	p.attribute(items)

	// 6. move refs, then prune.
	log := &repo.ReflogEntry{Author: reflogAuthor, Op: reflogOp, Message: "replicate from " + tr.base}
	for _, it := range moveOrder(items) {
		if it.res.Err != nil || it.old == it.new {
			continue
		}
		var err error
		switch {
		case it.res.Pruned:
			pl := *log
			pl.Message = "prune: not on primary " + tr.base
			if it.tag {
				err = c.Local.UpdateTag(it.res.Zone, it.res.Name, it.old, repo.ZeroHash, &pl)
			} else {
				err = c.Local.UpdateBranch(it.res.Zone, it.res.Name, it.old, repo.ZeroHash, &pl)
			}
		case it.tag:
			err = c.Local.UpdateTag(it.res.Zone, it.res.Name, it.old, it.new, log)
		default:
			err = c.Local.UpdateBranch(it.res.Zone, it.res.Name, it.old, it.new, log)
		}
		if err != nil {
			it.res.Err = fmt.Errorf("moving the local ref: %w", err)
		}
	}

	// 7. report.
	var pe PullError
	pe.Primary = tr.base
	for _, it := range items {
		res.Branches = append(res.Branches, it.res)
		if it.res.Err != nil {
			pe.Failed = append(pe.Failed, &BranchError{Zone: it.res.Zone, Name: it.res.Name, Tag: it.tag, Err: it.res.Err})
		}
	}
	if len(pe.Failed) > 0 {
		return res, &pe
	}
	return res, nil
}

// moveOrder puts "main" branches first: the first branch created in a new
// repository becomes its HEAD, and the zonegit tools default HEAD to main.
func moveOrder(items []*item) []*item {
	out := make([]*item, 0, len(items))
	for _, it := range items {
		if !it.tag && it.res.Name == "main" {
			out = append(out, it)
		}
	}
	for _, it := range items {
		if it.tag || it.res.Name != "main" {
			out = append(out, it)
		}
	}
	return out
}

// items turns a plan into the refs to move, with their current local
// values; pruneTags are the local tags to delete.
func (p *puller) items(plan *PullPlan, branches, tags, pruneTags []repo.Ref) []*item {
	localB := map[string]repo.Hash{}
	for _, r := range branches {
		localB[r.Zone+"/"+r.Name] = r.Hash
	}
	localT := map[string]repo.Hash{}
	for _, r := range tags {
		localT[r.Zone+"/"+r.Name] = r.Hash
	}
	var out []*item
	add := func(t Target, tag bool, local map[string]repo.Hash) {
		h := repo.MustParseHash(t.Hash) // Plan produced it
		old := local[t.Zone+"/"+t.Name]
		it := &item{tag: tag, pinned: t.Pinned, old: old, new: h, needs: old != h,
			res: BranchResult{Zone: t.Zone, Name: t.Name, Old: hexOrEmpty(old), New: t.Hash, Tag: tag}}
		out = append(out, it)
	}
	for _, t := range plan.Targets {
		add(t, false, localB)
	}
	for _, t := range plan.Tags {
		add(t, true, localT)
	}
	for _, r := range plan.Prune {
		out = append(out, &item{old: r.Hash, res: BranchResult{Zone: r.Zone, Name: r.Name, Old: r.Hash.String(), Pruned: true}})
	}
	for _, r := range pruneTags {
		out = append(out, &item{tag: true, old: r.Hash, res: BranchResult{Zone: r.Zone, Name: r.Name, Old: r.Hash.String(), Tag: true, Pruned: true}})
	}
	for _, e := range plan.Invalid {
		out = append(out, &item{tag: e.Tag, res: BranchResult{Zone: e.Zone, Name: e.Name, Tag: e.Tag, Err: e.Err}})
	}
	return out
}

func hexOrEmpty(h repo.Hash) string {
	if h.IsZero() {
		return ""
	}
	return h.String()
}

// transfer makes every needed target closure local and synced, or marks the
// items whose closure could not be completed. A returned error applies to
// every item that needed objects.
func (p *puller) transfer(items []*item, branches, tags []repo.Ref) error {
	known := map[repo.Hash]bool{}
	var knownList []string
	for _, rs := range [][]repo.Ref{branches, tags} {
		for _, r := range rs {
			if !known[r.Hash] {
				known[r.Hash] = true
				if len(knownList) < walkMaxKnown {
					knownList = append(knownList, r.Hash.String())
				}
			}
		}
	}
	var roots []repo.Hash
	seen := map[repo.Hash]bool{}
	for _, it := range items {
		if !it.needs || known[it.new] || seen[it.new] {
			continue
		}
		seen[it.new] = true
		roots = append(roots, it.new)
	}
	if len(roots) == 0 {
		return nil
	}

	// 3-4. With pack, one request per chunk of roots walks and streams
	// everything; what a stream left out (cut short, a corrupt frame, a
	// pack the primary refused) is the frontier the rounds below fetch.
	// Without pack, one walk for all diverged targets (chunked when there
	// are many) lists what the rounds fetch.
	var missing []repo.Hash
	var frontier []seed
	if p.usePack {
		var err error
		frontier, missing, err = p.packAll(roots, knownList, known)
		if err != nil {
			return err
		}
	} else {
		var err error
		if missing, err = p.walkAll(roots, knownList); err != nil {
			return err
		}
	}
	for _, f := range frontier {
		missing = append(missing, f.h)
	}
	p.idx = newObjIndex(missing)
	for _, f := range frontier {
		if i, ok := p.idx.find(f.h); ok {
			p.idx.want[i] = f.want
			p.idx.owner[i] = f.owner
		}
	}
	for _, it := range items {
		if e, bad := p.rootErr[it.new]; bad && it.needs {
			if it.pinned {
				it.res.Err = fmt.Errorf("pin %s/%s=%s: the primary cannot walk it: %w", it.res.Zone, it.res.Name, it.new, e)
			} else {
				it.res.Err = fmt.Errorf("the primary cannot walk %s: %w", it.new.Short(), e)
			}
		}
	}
	if p.usePack && p.idx.len() == 0 {
		// The streams delivered every closure, flushed and synced.
		p.progress(true)
		return p.checkFailed(items)
	}

	batch, err := p.c.Local.NewBatch()
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	p.batch = batch
	flushed := false
	defer func() {
		if !flushed {
			p.batch.Cancel()
		}
	}()

	// Roots the walk did not list must still be local or fetched.
	for _, r := range roots {
		if _, bad := p.rootErr[r]; bad {
			continue
		}
		if _, ok := p.idx.find(r); !ok {
			has, err := p.c.Local.Has(r)
			if err != nil {
				return fmt.Errorf("pull: reading local store: %w", err)
			}
			if !has {
				p.idx.add(r)
			}
		}
	}

	// 4-5. fetch in rounds: the walk's list, then anything the closure
	// check finds missing (a walk answer that was a subset). Each round is
	// flushed before its closure is verified, which reads the store.
	from := 0
	for round := 0; ; round++ {
		if err := p.ctx.Err(); err != nil {
			return fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
		}
		if err := p.markLocal(from); err != nil {
			return err
		}
		var need []int
		for i := from; i < p.idx.len(); i++ {
			if p.idx.flags[i]&flagLocal == 0 {
				need = append(need, i)
			}
		}
		p.total += len(need)
		if err := p.fetch(need); err != nil {
			return err
		}
		from = p.idx.len()
		flushed = true
		if err := p.batch.Flush(); err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		added, err := p.verifyClaims(known)
		if err != nil {
			return err
		}
		if added == 0 {
			break
		}
		p.discovery += added
		if p.c.opts.Logger != nil {
			p.c.opts.Logger.Warn("walk answer was incomplete; fetching objects found by the closure check", "objects", added, "round", round)
		}
		if p.batch, err = p.c.Local.NewBatch(); err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		flushed = false
	}
	p.progress(true)
	return p.checkFailed(items)
}

// checkFailed works out which targets have a complete closure: with no
// failures, all of them.
func (p *puller) checkFailed(items []*item) error {
	if len(p.failures) > 0 {
		return p.checkTargets(items)
	}
	return nil
}

// walkAll asks for everything the roots need given known, in one request
// per chunk of roots. A 404 ("root unknown") is narrowed down to the roots
// that caused it with one walk per root, so the error can name the branch
// or pin and the other targets still proceed.
func (p *puller) walkAll(roots []repo.Hash, known []string) ([]repo.Hash, error) {
	var missing []repo.Hash
	for start := 0; start < len(roots); start += walkRootsPerRequest {
		chunk := roots[start:min(len(roots), start+walkRootsPerRequest)]
		got, err := p.walk(chunk, known)
		var se *StatusError
		if err != nil && errors.As(err, &se) && se.StatusCode == http.StatusNotFound && len(chunk) > 1 {
			for _, r := range chunk {
				one, err := p.walk([]repo.Hash{r}, known)
				if err != nil {
					if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
						p.rootErr[r] = err
						continue
					}
					return nil, err
				}
				missing = append(missing, one...)
			}
			continue
		}
		if err != nil {
			if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
				p.rootErr[chunk[0]] = err
				continue
			}
			return nil, err
		}
		if missing == nil {
			missing = got // one chunk (the usual case): no copy of a long list
		} else {
			missing = append(missing, got...)
		}
	}
	return missing, nil
}

// walkBody encodes the request body shared by walk and pack. known is sent
// as [] rather than null, so a strict peer always sees a list.
func walkBody(roots []repo.Hash, known []string) ([]byte, error) {
	req := WalkRequest{Roots: make([]string, len(roots)), Known: known}
	for i, r := range roots {
		req.Roots[i] = r.String()
	}
	if req.Known == nil {
		req.Known = []string{}
	}
	return json.Marshal(req)
}

func (p *puller) walk(roots []repo.Hash, known []string) ([]repo.Hash, error) {
	body, err := walkBody(roots, known)
	if err != nil {
		return nil, err
	}
	resp, err := p.tr.do(p.ctx, http.MethodPost, BasePath+"/objects/walk", body, "application/json")
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	var out []repo.Hash
	if err := decodeWalk(resp.Body, func(h repo.Hash) { out = append(out, h) }); err != nil {
		return nil, fmt.Errorf("POST %s%s/objects/walk: %w", p.tr.base, BasePath, err)
	}
	return out, nil
}

// markLocal flags objects from index from on that are already stored, and
// checks their links: they may be leftovers of an interrupted pull, whose
// children were never written.
func (p *puller) markLocal(from int) error {
	err := p.c.Local.View(func(r repo.Reader) error {
		for i := from; i < p.idx.len(); i++ {
			if i%4096 == 0 && p.ctx.Err() != nil {
				return p.ctx.Err()
			}
			kind, payload, err := r.Get(p.idx.hashes[i])
			if errors.Is(err, repo.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			p.idx.flags[i] |= flagLocal
			p.mu.Lock()
			p.checkLinks(i, kind, payload)
			p.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pull: reading local store: %w", err)
	}
	return nil
}

// checkLinks records an object's kind and checks every child: one the walk
// listed gets its expected kind (checked when it arrives, or now if it
// already has); any other is a claim to verify locally. Caller holds p.mu.
func (p *puller) checkLinks(i int, kind repo.Kind, payload []byte) {
	x := p.idx
	x.kind[i] = kindCodes[kind]
	x.flags[i] |= flagChecked
	if w := x.want[i]; w != 0 && w != x.kind[i] {
		p.fail(i, fmt.Errorf("object %s is a %s, but its parent links it as a %s", x.hashes[i].Short(), kind, codeKinds[w]))
	}
	switch kind {
	case repo.KindBlob, repo.KindSymref:
		return
	case repo.KindTree:
		// In place, without allocating the entries: a flat zone's root
		// has one entry per name.
		it, err := newTreeIter(x.hashes[i], payload)
		for err == nil && it.next() {
			h := repo.Hash(it.hash)
			want := kindCodes[repo.KindBlob]
			if it.kind == byte(repo.EntrySubtree) {
				want = kindCodes[repo.KindTree]
			}
			j, ok := x.find(h)
			if !ok {
				// Verified per tree by verifyClaims (against the known
				// version of this tree when there is one).
				x.flags[i] |= flagClaims
				continue
			}
			p.linkIndexed(i, j, want)
		}
		if err == nil {
			err = it.err
		}
		if err != nil {
			p.fail(i, fmt.Errorf("object %s (tree) does not decode: %w", x.hashes[i].Short(), err))
		}
		return
	}
	links, err := repo.Links(kind, payload)
	if err != nil {
		p.fail(i, fmt.Errorf("object %s (%s) does not decode: %w", x.hashes[i].Short(), kind, err))
		return
	}
	for _, l := range links {
		j, ok := x.find(l.Hash)
		if !ok {
			p.claimed = append(p.claimed, claim{h: l.Hash, want: l.Kind, parent: int32(i)})
			continue
		}
		p.linkIndexed(i, j, kindCodes[l.Kind])
	}
}

// linkIndexed records that object i links to indexed object j as kind w,
// and checks w against j's kind when both are known. Caller holds p.mu.
func (p *puller) linkIndexed(i, j int, w uint8) {
	x := p.idx
	if x.parent[j] < 0 && j != i {
		x.parent[j] = int32(i)
	}
	if x.want[j] == 0 {
		x.want[j] = w
		if x.kind[j] != 0 && x.kind[j] != w {
			p.fail(j, fmt.Errorf("object %s is a %s, but %s links it as a %s", x.hashes[j].Short(), codeKinds[x.kind[j]], x.hashes[i].Short(), codeKinds[w]))
		}
	}
}

// fail marks an object unusable. Caller holds p.mu.
func (p *puller) fail(i int, err error) {
	p.idx.flags[i] |= flagFailed
	if _, dup := p.failures[i]; !dup {
		p.failures[i] = err
	}
}

// accept verifies one received object against the hash it was requested
// under and queues it in the batch. hashFirst hashes before taking the lock,
// so concurrent fetchers hash in parallel. The hash covers the kind, so a wrong
// kind from the server is a hash mismatch too.
func (p *puller) accept(i int, kind repo.Kind, payload []byte, hashFirst bool) error {
	h := p.idx.hashes[i]
	if hashFirst {
		if got := repo.HashObject(kind, payload); got != h {
			return fmt.Errorf("object %s failed verification (%s, %d bytes hash to %s): %w", h, kind, len(payload), got.Short(), repo.ErrHashMismatch)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idx.flags[i]&(flagFetched|flagLocal) != 0 {
		return nil // a duplicate frame or a retry that raced; already have it
	}
	// Batch.Put verifies the hash again: it is the store's only way in.
	if err := p.put(h, kind, payload); err != nil {
		if errors.Is(err, repo.ErrHashMismatch) {
			return fmt.Errorf("object %s failed verification (%s, %d bytes): %w", h, kind, len(payload), err)
		}
		return fmt.Errorf("object %s: %w", h, err)
	}
	p.idx.flags[i] |= flagFetched
	p.idx.flags[i] &^= flagFailed
	delete(p.failures, i)
	p.idx.size[i] = uint32(len(payload))
	p.objects++
	p.bytes += int64(len(payload))
	p.checkLinks(i, kind, payload)
	p.progress(false)
	return nil
}

// Bounds on what one write batch holds before it is flushed. Badger's
// WriteBatch commits in the background but keeps up to 16 transactions of
// entries in flight, and a large object is held until its transaction
// commits; flushing every so often bounds both. Flushing early is safe:
// objects are immutable and no ref moves until the closure is complete and
// the last flush has synced.
const (
	flushObjects = 1 << 16
	flushBytes   = 16 << 20
)

// put verifies and queues one object in the current batch, flushing the
// batch when it holds enough. Caller holds p.mu (or is the only writer).
func (p *puller) put(h repo.Hash, kind repo.Kind, payload []byte) error {
	if err := p.batch.Put(h, kind, payload); err != nil {
		return err
	}
	if n, b := p.batch.Count(); n < flushObjects && b < flushBytes {
		return nil
	}
	if err := p.batch.Flush(); err != nil {
		return err
	}
	nb, err := p.c.Local.NewBatch()
	if err != nil {
		return err
	}
	p.batch = nb
	return nil
}

// progress calls the Progress callback at most every 250ms. Caller holds
// p.mu (or is the only goroutine left).
func (p *puller) progress(final bool) {
	if p.opts.Progress == nil {
		return
	}
	if now := time.Now(); final || now.Sub(p.lastProg) >= 250*time.Millisecond {
		p.lastProg = now
		p.opts.Progress(Progress{Objects: p.objects, Total: p.total, Bytes: p.bytes})
	}
}

// checkTargets runs when some objects failed: it walks each target's
// closure through the objects this pull dealt with and fails exactly the
// targets that reach a failed or absent object. Objects outside the index
// were verified local (closure of a known tip).
func (p *puller) checkTargets(items []*item) error {
	x := p.idx
	mark := make([]uint32, x.len())
	epoch := uint32(0)
	return p.c.Local.View(func(r repo.Reader) error {
		for _, it := range items {
			if !it.needs || it.res.Err != nil {
				continue
			}
			epoch++
			stack := []repo.Hash{it.new}
			for len(stack) > 0 {
				h := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				i, ok := x.find(h)
				if !ok {
					continue
				}
				if mark[i] == epoch {
					continue
				}
				mark[i] = epoch
				if x.flags[i]&flagFailed != 0 {
					it.res.Err = p.failures[i]
					if it.res.Err == nil {
						it.res.Err = fmt.Errorf("object %s could not be fetched", h)
					}
					break
				}
				if x.flags[i]&(flagLocal|flagFetched) == 0 {
					it.res.Err = fmt.Errorf("object %s is missing: the closure is incomplete", h)
					break
				}
				kind, payload, err := r.Get(h)
				if err != nil {
					it.res.Err = fmt.Errorf("object %s: %w", h, err)
					break
				}
				links, err := repo.Links(kind, payload)
				if err != nil {
					it.res.Err = fmt.Errorf("object %s (%s) does not decode: %w", h, kind, err)
					break
				}
				for _, l := range links {
					stack = append(stack, l.Hash)
				}
			}
		}
		return nil
	})
}

// attribute fills each branch's Objects/Bytes for the objects the index
// fetched: an object counts for the first target whose closure reached it
// (following the first parent that linked it), so shared objects are
// counted once. Objects a pack stream delivered were counted as they
// arrived.
func (p *puller) attribute(items []*item) {
	if p.idx == nil {
		return
	}
	x := p.idx
	for k, it := range items {
		if !it.needs {
			continue
		}
		if i, ok := x.find(it.new); ok && x.owner[i] < 0 {
			x.owner[i] = int32(k)
		}
	}
	memo := make([]int32, x.len()) // 0 unknown, -1 none, else item index+1
	rootOf := func(i int) int32 {
		// Iterative: parent chains can be as long as the history.
		var path []int
		r := int32(-1)
		for steps := 0; steps <= x.len(); steps++ {
			if memo[i] != 0 {
				r = memo[i]
				break
			}
			if o := x.owner[i]; o >= 0 {
				r = o + 1
				break
			}
			path = append(path, i)
			if x.parent[i] < 0 {
				break
			}
			i = int(x.parent[i])
		}
		for _, j := range path {
			memo[j] = r
		}
		return r
	}
	for i := 0; i < x.len(); i++ {
		if x.flags[i]&flagFetched == 0 {
			continue
		}
		if r := rootOf(i); r > 0 {
			it := items[r-1]
			it.res.Objects++
			it.res.Bytes += int64(x.size[i])
		}
	}
}

// fetch gets the objects at the given index positions, by the batch
// extension when offered, else by concurrent GETs.
func (p *puller) fetch(need []int) error {
	if len(need) == 0 {
		return nil
	}
	if p.useBatch {
		rest, err := p.fetchBatch(need)
		if err != nil {
			return err
		}
		need = rest
	}
	return p.fetchV0(need)
}
