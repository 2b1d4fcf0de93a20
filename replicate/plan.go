package replicate

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// BranchError is the failure of one branch (or tag) in a pull.
type BranchError struct {
	Zone, Name string
	Tag        bool
	Err        error
}

func (e *BranchError) Error() string {
	what := "branch"
	if e.Tag {
		what = "tag"
	}
	return fmt.Sprintf("%s %s/%s: %v", what, DisplayName(e.Zone), DisplayName(e.Name), e.Err)
}

func (e *BranchError) Unwrap() error { return e.Err }

// PullError is returned by PullWith when any branch failed. It lists each
// failed branch; the branches that are not listed were applied.
type PullError struct {
	Primary string
	Failed  []*BranchError
}

func (e *PullError) Error() string {
	var b strings.Builder
	if len(e.Failed) == 1 {
		fmt.Fprintf(&b, "pull from %s: %v", e.Primary, e.Failed[0])
		return b.String()
	}
	fmt.Fprintf(&b, "pull from %s: %d branches failed", e.Primary, len(e.Failed))
	for _, f := range e.Failed {
		b.WriteString("\n  ")
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap exposes each branch error to errors.Is / errors.As.
func (e *PullError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f
	}
	return out
}

// checkAdvertised validates one ref the primary advertised. The names
// become Badger keys, so anything a ref name may not contain is refused.
func checkAdvertised(b Branch, tag bool) (repo.Hash, error) {
	if err := repo.ValidateZone(b.Zone); err != nil {
		return repo.Hash{}, fmt.Errorf("primary advertised an invalid name: %w", err)
	}
	validate := repo.ValidateBranch
	if tag {
		validate = repo.ValidateTag
	}
	if err := validate(b.Name); err != nil {
		return repo.Hash{}, fmt.Errorf("primary advertised an invalid name: %w", err)
	}
	h, err := repo.ParseHash(b.Hash)
	if err != nil {
		return h, fmt.Errorf("primary advertised an invalid hash: %w", err)
	}
	if h.IsZero() {
		return h, fmt.Errorf("primary advertised the zero hash")
	}
	return h, nil
}

// Plan selects targets and prunes from the primary's refs and the local
// branches, without any I/O. Bad filters, pins or hashes are errors naming
// the value. Branches the primary advertises with hostile names or hashes
// are not targets; they are listed in Invalid (an error for that branch).
//
// Prune removes the local branches the selection matches that the primary
// no longer advertises; pinned branches are never pruned. With PinsOnly the
// pins are the complete list of branches to keep, so Prune removes every
// local branch without a pin, whatever the filters say: the caller (the
// provider's apply) has already decided, in its plan, which branches go.
func Plan(primary *RefsResponse, local []repo.Ref, opts PullOptions) (*PullPlan, error) {
	if primary == nil {
		primary = &RefsResponse{}
	}
	sel := opts.Selection()
	if err := sel.validateFilters(); err != nil {
		return nil, err
	}
	pins, err := parsePins(opts.Pins)
	if err != nil {
		return nil, err
	}
	selected := sel.Matches

	p := &PullPlan{}
	advertised := map[string]bool{}
	targets := map[string]Target{}
	for _, b := range primary.Branches {
		key := b.Zone + "/" + b.Name
		if _, pinned := pins[key]; pinned {
			advertised[key] = true
			continue // the pin decides; the advertised tip does not matter
		}
		if !selected(b.Zone, b.Name) || opts.PinsOnly {
			advertised[key] = true
			continue
		}
		h, err := checkAdvertised(b, false)
		if err != nil {
			p.Invalid = append(p.Invalid, &BranchError{Zone: clipStr(b.Zone), Name: clipStr(b.Name), Err: err})
			// A hostile entry must not make a valid local branch look
			// absent (and be pruned) either.
			advertised[key] = true
			continue
		}
		if prev, dup := targets[key]; dup && prev.Hash != h.String() {
			p.Invalid = append(p.Invalid, &BranchError{Zone: b.Zone, Name: b.Name,
				Err: fmt.Errorf("primary advertised the branch twice (%s and %s)", prev.Hash[:12], h.Short())})
			delete(targets, key)
			advertised[key] = true
			continue
		}
		advertised[key] = true
		targets[key] = Target{Zone: b.Zone, Name: b.Name, Hash: h.String(), hash: h}
	}
	for key, h := range pins {
		zone, name, _ := repo.SplitRefPath(key)
		targets[key] = Target{Zone: zone, Name: name, Hash: h.String(), Pinned: true, hash: h}
	}
	for _, t := range targets {
		p.Targets = append(p.Targets, t)
	}
	sort.Slice(p.Targets, func(i, j int) bool {
		a, b := p.Targets[i], p.Targets[j]
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		return a.Name < b.Name
	})

	if opts.Prune {
		for _, r := range local {
			key := r.Zone + "/" + r.Name
			if _, pinned := pins[key]; pinned {
				continue
			}
			// With PinsOnly the pins are every branch the caller keeps.
			if !opts.PinsOnly && (advertised[key] || !selected(r.Zone, r.Name)) {
				continue
			}
			p.Prune = append(p.Prune, r)
		}
	}

	planTags(p, primary, sel)
	return p, nil
}

// planTags adds the primary's tags within the zone filter to p.Tags (tags
// are selected by zone only), and those it advertised with an unusable name
// or hash to p.Invalid.
func planTags(p *PullPlan, primary *RefsResponse, sel Selection) {
	for _, t := range primary.Tags {
		if !sel.Zone(t.Zone) {
			continue
		}
		h, err := checkAdvertised(t, true)
		if err != nil {
			p.Invalid = append(p.Invalid, &BranchError{Zone: clipStr(t.Zone), Name: clipStr(t.Name), Tag: true, Err: err})
			continue
		}
		p.Tags = append(p.Tags, Target{Zone: t.Zone, Name: t.Name, Hash: h.String(), hash: h})
	}
	sort.Slice(p.Tags, func(i, j int) bool {
		a, b := p.Tags[i], p.Tags[j]
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		return a.Name < b.Name
	})
}

// planTagPrune lists the local tags, within the zone filter (tags are
// selected by zone only, as in Plan), that the primary does not advertise.
// Only call it when the primary offers the "tags" extension: a v0 primary
// says nothing about tags, so its silence must never delete one. Every
// entry the primary listed counts as advertised, even one Plan refused as
// invalid, so a hostile entry cannot make a valid local tag look absent.
func planTagPrune(primary *RefsResponse, local []repo.Ref, opts PullOptions) []repo.Ref {
	advertised := map[string]bool{}
	if primary != nil {
		for _, t := range primary.Tags {
			advertised[t.Zone+"/"+t.Name] = true
		}
	}
	var out []repo.Ref
	for _, r := range local {
		if advertised[r.Zone+"/"+r.Name] || !opts.Selection().Zone(r.Zone) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// RefsPlan is what a pull with some PullOptions would make of a local
// repository's branches: the plan zonegit_replica shows, and the secondary
// daemon's POST /plan answers. Both make it with Client.PlanRefs.
type RefsPlan struct {
	// Refs are the branches after an apply, "<zone>/<branch>" -> hex.
	Refs map[string]string
	// Current are the local branches now.
	Current map[string]string
	// Invalid are selected branches and tags the primary advertised that
	// cannot be stored (see PullPlan.Invalid); each is an error of the
	// plan. Pins are not checked while there are any.
	Invalid []*BranchError
	// Pins are the pins that would move a branch and that the primary
	// could not be shown to have, sorted by key; each is an error of the
	// plan.
	Pins []*PinError
	// Targets and Pruned count the branches the plan moves or keeps and
	// the ones it deletes (for logs).
	Targets, Pruned int
}

// PinError is a pin the primary does not have (Err wraps repo.ErrNotFound)
// or that could not be checked (the primary unreachable, or the object
// not a commit).
type PinError struct {
	Key  string // "<zone>/<branch>"
	Hash string // hex
	Err  error
}

func (e *PinError) Error() string {
	return fmt.Sprintf("pin %q = %s: %v", e.Key, e.Hash, e.Err)
}

func (e *PinError) Unwrap() error { return e.Err }

// PlanRefs plans a pull of opts into a repository whose branches are
// local, from the primary's refs: the branches an apply will produce
// (Plan's targets over the local branches, less what it prunes; with
// Prune also less the local branches the selection no longer selects, so
// the replica keeps exactly its selection), and the branches now. When the
// primary's refs are all usable it asks the primary, for each pin that
// would move its branch, whether it has that commit (one HasCommit each; a
// pin the replica already holds costs nothing), so a pin an apply could not
// pull fails the plan rather than the apply. The error is a selection or
// pin that is invalid in itself; problems with the primary's answers are
// in Invalid and Pins.
func (c *Client) PlanRefs(ctx context.Context, primary *RefsResponse, local []repo.Ref, opts PullOptions) (*RefsPlan, error) {
	out, err := PlanRefsOffline(primary, local, opts)
	if err != nil || len(out.Invalid) > 0 {
		return out, err
	}
	keys := make([]string, 0, len(opts.Pins))
	for k := range opts.Pins {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		h, err := repo.ParseHash(strings.TrimSpace(opts.Pins[key]))
		if err != nil {
			return nil, fmt.Errorf("pin %q: %w", key, err) // Plan has parsed it already
		}
		if out.Current[key] == h.String() {
			continue // applied: nothing to pull
		}
		if err := c.HasCommit(ctx, h); err != nil {
			out.Pins = append(out.Pins, &PinError{Key: key, Hash: h.String(), Err: err})
		}
	}
	return out, nil
}

// PlanRefsOffline is PlanRefs without asking the primary about pins, for a
// caller that cannot reach the primary and plans from refs it was given:
// zonegit_secondary plans from what its daemon's primary offered during
// refresh, and the daemon, which can reach the primary, checks the pins.
func PlanRefsOffline(primary *RefsResponse, local []repo.Ref, opts PullOptions) (*RefsPlan, error) {
	p, err := Plan(primary, local, opts)
	if err != nil {
		return nil, err
	}
	out := &RefsPlan{Refs: p.Refs(local), Current: RefsMap(local), Invalid: p.Invalid,
		Targets: len(p.Targets), Pruned: len(p.Prune)}
	if opts.Prune {
		for _, r := range opts.Selection().Unselected(local) {
			delete(out.Refs, r.Zone+"/"+r.Name)
			out.Pruned++
		}
	}
	return out, nil
}

// RefsMap returns refs as "<zone>/<name>" -> hex, the shape of
// zonegit_replica's refs attribute and of the secondary daemon's answers.
func RefsMap(refs []repo.Ref) map[string]string {
	out := make(map[string]string, len(refs))
	for _, r := range refs {
		out[r.Zone+"/"+r.Name] = r.Hash.String()
	}
	return out
}
