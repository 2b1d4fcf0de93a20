package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
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
	// checked: the closure check found its target's closure complete, so
	// it may move.
	checked bool
}

// puller holds the state of one PullWith call: the one transfer engine.
// Whatever transport brings objects (a pack stream, batch streams, GETs),
// each is checked (hash, kind allowed by its links, strict decoding)
// before it is stored, and only objects asked for are accepted; then the
// closure check (verify.go) walks every target's closure, reading back
// from the store what this pull did not store itself (what it did, its
// receipts in got vouch for once the batch has synced), and what it finds
// absent is the next round's request. A ref moves only when its closure
// checked complete.
type puller struct {
	c        *Client
	ctx      context.Context
	tr       *transport
	opts     PullOptions
	useBatch bool
	usePack  bool

	mu       sync.Mutex // guards batch, got, counters and failed while fetchers run
	batch    objectBatch
	local    repo.Reader // the replica, for the trees a pack stream's trees replace
	got      received    // objects stored by this pull: the receipts (index.go)
	objects  int
	bytes    int64
	total    int
	settled  int // objects a fetch stored or gave up on, for its progress test
	lastProg time.Time

	// expect holds the kinds the links to a needed object allow, for the
	// roots and the objects the closure check asked for; objects a walk
	// listed are not in it (a walk answer names no kinds) and may be of any
	// kind until the closure check reads them.
	expect map[repo.Hash]kindSet
	// failed holds why an object could not be had after the transports'
	// retries, and the kinds it was asked for as; the targets that reach
	// it through a link allowing no other kind fail with this error.
	failed map[repo.Hash]fetchFailure
	// actual holds the kind of objects that arrived intact (their hash
	// verified) but were refused for their kind: a later link that
	// allows it gets them asked for again, any other fails on them.
	actual    map[repo.Hash]repo.Kind
	big       bigBody    // the buffer for GET bodies beyond smallBody
	pack      *packState // while pack streams arrive
	streamErr error      // the first pack stream that had to be stopped
	rootErr   map[repo.Hash]error
	// sealed: the first round is one pack stream of one root into a store
	// that held no object, and so far everything it delivered proves the
	// root's closure complete by itself (see seal in verify.go).
	sealed       bool
	sealCredited bool // the root's first target was credited with every object
	// ahead is the flush of a large object written ahead (writeAhead),
	// while it runs: it sends the flush's error.
	ahead chan error
}

// PullWith performs one sync cycle with options and reports per branch. Any
// branch error makes it return an error listing each failed branch (a
// *PullError); the branches that succeeded stay applied and appear in the
// result.
//
// Longer than 80 lines on purpose: it is the seven steps of one pull
// (numbered below) in the order they happen, each a call or a short loop,
// so a reader follows a pull from refs to report in one place.
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
	if !info.Has(wire.CapTags) {
		refs.Tags = nil
	}
	plan, err := Plan(&refs, localBranches, opts)
	if err != nil {
		return res, fmt.Errorf("pull: %w", err)
	}

	var pruneTags []repo.Ref
	if opts.Prune && info.Has(wire.CapTags) {
		// Only a primary that lists its tags can say one is gone.
		pruneTags = planTagPrune(&refs, localTags, opts)
	}

	p := &puller{c: c, ctx: ctx, tr: tr, opts: opts, useBatch: info.Has(wire.CapBatch), usePack: info.Has(wire.CapPack), local: c.Local,
		got: received{}, expect: map[repo.Hash]kindSet{}, failed: map[repo.Hash]fetchFailure{}, actual: map[repo.Hash]repo.Kind{}, rootErr: map[repo.Hash]error{}}
	items := p.items(plan, localBranches, localTags, pruneTags)

	// 2-5. walk, fetch, verify closures, flush.
	if err := p.transfer(items, localBranches, localTags); err != nil {
		for _, it := range items {
			if it.needs && it.res.Err == nil {
				it.res.Err = err
			}
		}
	}
	res.Objects, res.Bytes = p.objects, p.bytes

	// 6. move refs, then prune.
	log := &repo.ReflogEntry{Author: reflogAuthor, Op: reflogOp, Message: "replicate from " + tr.base}
	for _, it := range moveOrder(items) {
		if it.res.Err != nil || it.old == it.new {
			continue
		}
		if it.needs && !it.checked {
			// Only a closure the check found complete may be named
			// by a ref; transfer gives every other target an error.
			it.res.Err = errors.New("pull: the closure was not checked")
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
		h := t.hash
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

// transfer makes every needed target closure local, synced and checked,
// or sets the error of the items whose closure could not be completed. A
// returned error applies to every item that needed objects and has no
// error yet.
//
// Longer than 80 lines on purpose: round 0 (walk or pack, then fetch) and
// the check-and-fetch rounds share the batch and its cancel-on-failure,
// which is easiest to see whole.
func (p *puller) transfer(items []*item, branches, tags []repo.Ref) (err error) {
	// Known: the local tips, complete closures by invariant. The primary
	// is told about them (up to walkMaxKnown); the closure check trusts
	// them, zone by zone.
	known := map[repo.Hash]bool{}
	zoneKnown := map[string][]repo.Hash{}
	var knownList []string
	for _, rs := range [][]repo.Ref{branches, tags} {
		for _, r := range rs {
			// A ref naming an object the store lacks (damage, or a hand
			// edit) breaks that invariant: the walk must not stop at it,
			// or a target at that commit would move with nothing below.
			if ok, err := p.c.Local.Has(r.Hash); err != nil {
				return fmt.Errorf("pull: reading local ref %s/%s: %w", r.Zone, r.Name, err)
			} else if !ok {
				if l := p.c.opts.Logger; l != nil {
					l.Warn("a local ref names an object the replica lacks; its closure is not trusted", "ref", r.Zone+"/"+r.Name, "hash", r.Hash.String())
				}
				continue
			}
			zoneKnown[r.Zone] = repo.AppendUnique(zoneKnown[r.Zone], r.Hash)
			if !known[r.Hash] {
				known[r.Hash] = true
				if len(knownList) < walkMaxKnown {
					knownList = append(knownList, r.Hash.String())
				}
			}
		}
	}
	var targets []*item
	var roots []repo.Hash
	for _, it := range items {
		if !it.needs || it.res.Err != nil {
			continue
		}
		targets = append(targets, it)
		want := rootKinds(it)
		if prev, ok := p.expect[it.new]; ok {
			p.expect[it.new] = prev | want
			continue
		}
		p.expect[it.new] = want
		if !known[it.new] {
			roots = append(roots, it.new)
		}
	}
	if len(targets) == 0 {
		return nil
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
		// A write ahead still running when the transfer fails is waited
		// for: it writes into the caller's store, which may close next.
		if aerr := p.waitAhead(); aerr != nil && err == nil {
			err = fmt.Errorf("pull: %w", aerr)
		}
	}()

	// Round 0: with pack, one request per chunk of roots walks and
	// streams everything; without, one walk for all roots (chunked when
	// there are many) lists what batch streams or GETs fetch.
	if err := p.seal(roots, targets); err != nil {
		return err
	}
	if len(roots) > 0 {
		var listed []repo.Hash
		if p.usePack {
			listed, err = p.packAll(roots, knownList)
		} else {
			listed, err = p.postWalks(roots, knownList)
		}
		if err != nil {
			return err
		}
		if err := p.fetch(dedup(listed)); err != nil {
			return err
		}
	}
	for _, it := range targets {
		if e, bad := p.rootErr[it.new]; bad {
			if it.pinned {
				it.res.Err = fmt.Errorf("pin %s/%s=%s: the primary cannot walk it: %w", it.res.Zone, it.res.Name, it.new, e)
			} else {
				it.res.Err = fmt.Errorf("the primary cannot walk %s: %w", it.new.Short(), e)
			}
		}
	}

	// Then rounds: flush, check every undecided target's closure in the
	// store, fetch what the check found absent. An object is asked for
	// again only with a kind it was not asked for as before, so the
	// rounds end.
	asked := map[repo.Hash]kindSet{}
	for round := 1; ; round++ {
		flushed = true
		if err := p.batch.Flush(); err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		// The receipts vouch only for objects flushed and synced: the
		// write ahead too.
		if err := p.waitAhead(); err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		need, err := p.checkClosures(targets, zoneKnown, asked)
		if err != nil {
			return err
		}
		p.sealed = false // later rounds fetch by batch or GET, which prove nothing
		if len(need) == 0 {
			break
		}
		if p.c.opts.Logger != nil {
			p.c.opts.Logger.Warn("closures incomplete after the transfer; fetching what the check found absent", "objects", len(need), "round", round)
		}
		if p.batch, err = p.c.Local.NewBatch(); err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		flushed = false
		if err := p.ctx.Err(); err != nil {
			return fmt.Errorf("pull canceled: %w", context.Cause(p.ctx))
		}
		if err := p.fetch(need); err != nil {
			return err
		}
	}
	p.progress(true)
	return nil
}

// rootKinds is what a ref may point at: a branch (pinned or not) a
// commit; a tag a commit, or an annotated tag object that leads to one.
func rootKinds(it *item) kindSet {
	if it.tag {
		return setCommit | setTag
	}
	return setCommit
}

// expectOf is the kinds an object may have for the transports: those its
// links allow when the engine knows them, any otherwise (the closure check
// verifies every link before a ref moves).
func (p *puller) expectOf(h repo.Hash) kindSet {
	if k, ok := p.expect[h]; ok {
		return k
	}
	return anyKind
}

// dedup sorts hashes and drops repeats, in place. Hash order is also the
// primary's key order, which keeps its reads local.
func dedup(hs []repo.Hash) []repo.Hash {
	slices.SortFunc(hs, func(a, b repo.Hash) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(hs)
}

// warn logs a transport problem the engine recovers from.
func (p *puller) warn(msg string, err error) {
	if p.c.opts.Logger != nil {
		p.c.opts.Logger.Warn(msg, "primary", p.tr.base, "error", err.Error())
	}
}

// postWalks asks the primary (POST /v0/objects/walk) for everything the roots need given known, in one request
// per chunk of roots. A failure that may come from some of the roots (404
// "root unknown", or a 5xx from a primary whose store is damaged below some
// roots) is narrowed down to the roots that caused it with one walk per
// root, so the error can name the branch or pin and the other targets still
// proceed.
func (p *puller) postWalks(roots []repo.Hash, known []string) ([]repo.Hash, error) {
	var missing []repo.Hash
	for start := 0; start < len(roots); start += walkRootsPerRequest {
		chunk := roots[start:min(len(roots), start+walkRootsPerRequest)]
		n := len(missing)
		var err error
		missing, err = p.postWalk(chunk, known, missing)
		if err == nil {
			continue
		}
		missing = missing[:n]
		if !rootSpecific(err) {
			return nil, err
		}
		if len(chunk) == 1 {
			p.rootErr[chunk[0]] = err
			continue
		}
		// One walk per root tells which roots the primary cannot walk, so
		// the error names exactly their branches and the others proceed.
		for _, r := range chunk {
			n := len(missing)
			missing, err = p.postWalk([]repo.Hash{r}, known, missing)
			if err != nil {
				missing = missing[:n]
				if !rootSpecific(err) {
					return nil, err
				}
				p.rootErr[r] = err
			}
		}
	}
	return missing, nil
}

// rootSpecific reports whether a failed walk may be caused by one of its
// roots rather than by the primary as a whole: 404 (a root it does not
// have) or a server error, which a primary with a damaged closure gives for
// the roots that reach the damage (after the transport's retries). Network
// failures and other answers concern every root.
func rootSpecific(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.StatusCode == http.StatusNotFound || (se.StatusCode >= 500 && se.StatusCode != http.StatusServiceUnavailable)
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

// postWalk asks the primary (POST /v0/objects/walk) for what roots need
// given known and appends the answer to out. However long the answer, out
// holds at most maxWalkHashes: no primary lists more in one pull, so a
// longer answer is refused rather than held in memory.
func (p *puller) postWalk(roots []repo.Hash, known []string, out []repo.Hash) ([]repo.Hash, error) {
	body, err := walkBody(roots, known)
	if err != nil {
		return out, err
	}
	resp, err := p.tr.do(p.ctx, http.MethodPost, wire.WalkPath, body, "application/json")
	if err != nil {
		return out, err
	}
	defer drain(resp)
	err = wire.DecodeMissing(resp.Body, func(h repo.Hash) error {
		if len(out) >= maxWalkHashes {
			return fmt.Errorf("the answer lists more than %d objects, more than a primary lists for one pull", maxWalkHashes)
		}
		out = append(out, h)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("POST %s%s: %w", p.tr.base, wire.WalkPath, err)
	}
	return out, nil
}

// objectBatch is where received objects are queued: a repo.Batch, which
// takes only objects repo.Verify checked and syncs them on Flush. It is an
// interface only so the pack stream fuzzer can run without a store, whose
// background goroutines would make its coverage differ from run to run.
type objectBatch interface {
	PutVerified(o repo.Verified) error
	Count() (objects int, bytes int64)
	Flush() error
	Cancel()
}

// writeAheadBytes is the size from which an object is written at once, in
// a batch of its own flushed (written and synced) in the background, rather
// than queued until the transfer's flush. A flat zone's apex tree is one
// object of ~40 bytes a name (4 MB for 100,000 names) that changes with
// every record: an incremental pull is that tree and a handful of small
// objects, and the store's write of it (a copy into the value log, whose
// fresh pages the kernel zeroes first, then its sync) took longer than
// everything else the client does. Written ahead, it overlaps comparing
// the tree with the one it replaces and the rest of the stream. Badger
// keeps values this large in its value log either way (ValueThreshold).
const writeAheadBytes = 1 << 20

// put queues one verified object in the current batch; a large object is
// written ahead instead (writeAhead). Caller holds p.mu (or is the only
// writer).
//
// The batch is not flushed while objects arrive, only when a round ends
// (transfer), before any ref may move: a flush waits for every write
// queued and syncs, which drained the pack pipeline every 65,536 objects
// or 16 MiB (3 times in a 100k-record pull, 30 in a 1M one) for nothing
// a later step needs. A repo.Batch hands what it is given to Badger as it
// goes and bounds what it holds on its own.
func (p *puller) put(o repo.Verified) error {
	if len(o.Payload()) >= writeAheadBytes && p.c.Local != nil {
		return p.writeAhead(o)
	}
	if err := p.batch.PutVerified(o); err != nil {
		return err
	}
	fb := midStreamFlushBytes.Load()
	if fb <= 0 {
		return nil
	}
	if _, b := p.batch.Count(); b < fb {
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

// midStreamFlushBytes, when positive, flushes the batch whenever it holds
// that many payload bytes, as pulls once did: tests set it to make an
// object the stream sent earlier readable from the store while the stream
// still runs, deterministically.
var midStreamFlushBytes atomic.Int64

// writeAhead writes one large object in a batch of its own, flushed in
// the background; at most one is in flight, so the objects held for it
// stay bounded. Like any early flush this is safe: objects are immutable,
// and no ref moves before waitAhead reported this flush done (transfer
// waits for it before the closure check trusts the receipts). Caller holds
// p.mu (or is the only writer).
func (p *puller) writeAhead(o repo.Verified) error {
	if err := p.waitAhead(); err != nil {
		return err
	}
	b, err := p.c.Local.NewBatch()
	if err != nil {
		return err
	}
	if err := b.PutVerified(o); err != nil {
		b.Cancel()
		return err
	}
	done := make(chan error, 1)
	p.ahead = done
	go func() { done <- b.Flush() }()
	return nil
}

// waitAhead waits for the write ahead in flight, if any, and returns its
// error.
func (p *puller) waitAhead() error {
	if p.ahead == nil {
		return nil
	}
	err := <-p.ahead
	p.ahead = nil
	return err
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
