package replicate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Client is a secondary's pull-replication client. Construct one per
// (primary, local-repo) pair with NewClient or NewClientWithOptions and call
// Pull (one pass) or Run (polling loop). Set the exported fields before
// calling Run; they are read, not locked.
type Client struct {
	PrimaryURL string
	Local      *repo.Repo
	// Interval is Run's wait between pulls after a success; default 5s.
	Interval time.Duration
	// MaxBackoff caps Run's wait after consecutive failures, which
	// doubles from Interval; default 5 minutes, never below Interval.
	MaxBackoff time.Duration
	// OnPull, when set, receives the outcome of every pull Run makes, in
	// Run's goroutine before the wait for the next pull (a slow callback
	// delays the loop). err is PullWith's error; res is never nil. A pull
	// cut short by Stop or by Run's context is not reported: Run returns.
	OnPull func(res *PullResult, err error)
	// PullFunc, when set, is what Run calls for each pull instead of
	// PullWith(ctx, PullOptions{}): for a caller whose selection changes
	// while Run runs (the secondary daemon's desired state), or that must
	// serialize Run's pulls with its own. It should call PullWith. A nil
	// result with a nil error means there was nothing to pull this time:
	// it is not reported, and counts as a success for the wait.
	PullFunc func(ctx context.Context) (*PullResult, error)
	// HTTP makes the requests; NewClient and NewClientWithOptions set it.
	// A replacement (own TLS setup, proxy, test transport) is used for
	// the connections only: this client's RequestTimeout, stall rule,
	// retries, headers and redirect policy still apply to every request.
	HTTP *http.Client

	opts    ClientOptions
	tr      *transport // built from opts; HTTP is its underlying client
	initErr error      // why NewClient could not build tr; every pull reports it

	pullMu sync.Mutex // one Pull at a time per Client

	stopMu sync.Mutex
	stopCh chan struct{}
}

// ClientOptions configure transport, auth and retries. Zero values take
// the defaults noted on each field.
type ClientOptions struct {
	PrimaryURL     string            // http(s)://host:port[/prefix]
	Token          string            // bearer token; never logged
	Headers        map[string]string // extra request headers
	CACertPEM      string            // extra CA bundle (PEM)
	ClientCertPEM  string            // mTLS certificate (PEM), with ClientKeyPEM
	ClientKeyPEM   string            // mTLS key (PEM)
	Insecure       bool              // skip TLS verification (only when asked)
	RequestTimeout time.Duration     // per HTTP request; default 30s
	Concurrency    int               // parallel object GETs in v0 mode; default 8
	RetryAttempts  int               // retries after the first try; default 4
	RetryMinDelay  time.Duration     // default 200ms
	RetryMaxDelay  time.Duration     // default 5s; also caps Retry-After
	UserAgent      string            // default "terraform-provider-zonegit/dev"
	Logger         wire.Logger       // nil: silent
	V0Only         bool              // ignore advertised extensions (tests, debugging)

	// A response body that brings fewer than StallMinRate bytes per
	// second over StallWindow of waiting is cut off with an error naming
	// the primary; RequestTimeout bounds the wait for headers and any
	// silence in a body. Defaults 30s and 1024; StallMinRate < 0 disables
	// the rate check. The whole pull is bounded by the caller's context:
	// give it a deadline.
	StallWindow  time.Duration
	StallMinRate int64
}

// PullOptions select what one Pull replicates.
type PullOptions struct {
	// Zones and Branches filter the primary's branches: exact names or
	// path.Match globs; empty = all. A branch is selected when its zone
	// matches some Zones entry and its name some Branches entry.
	Zones    []string
	Branches []string
	// Pins map "<zone>/<branch>" to a commit hash (hex) to replicate instead
	// of the primary's tip. Pins win over filters, and a pinned branch need
	// not be advertised by the primary; a pin the primary cannot walk is an
	// error naming it.
	Pins map[string]string
	// Prune deletes local branches, within the selection, that the primary
	// no longer has (pinned branches are never pruned), and local tags,
	// within the zone filter, that it no longer lists. Tags are only pruned
	// against a primary offering the "tags" extension: a v0 primary does
	// not list tags, so it cannot say one is gone.
	Prune bool
	// PinsOnly makes the pins the complete set of branches to keep: only
	// pinned branches are targets, and with Prune every local branch
	// without a pin is deleted, whatever the filters say (Zones then only
	// select tags). Terraform's apply uses it to make the replica exactly
	// the plan, even if the primary grew a new branch after the plan.
	PinsOnly bool
	// Progress, when set, is called as objects arrive (for long pulls).
	Progress func(Progress)
}

// Exactly returns o made to produce exactly refs (a plan's Refs, see
// Client.PlanRefs): every planned branch pinned to its planned hash and
// PinsOnly, so that a primary that moved, or grew a branch, after the plan
// changes nothing; with Prune every other local branch is deleted. Tags
// still follow the zone filter. zonegit_replica's apply and the secondary
// daemon's apply both pull with it.
func (o PullOptions) Exactly(refs map[string]string) PullOptions {
	o.PinsOnly, o.Pins = true, refs
	return o
}

// Progress reports a pull in flight. Over the pack extension the primary
// does not say how many objects are coming: Total is then what is known so
// far (objects received plus objects linked but not yet received), and
// grows as the stream goes on.
type Progress struct {
	Objects, Total int
	Bytes          int64
}

// Target is one branch (or tag) a pull will move (the output of Plan).
type Target struct {
	Zone, Name string
	Hash       string // hex; the pin if pinned, else the primary's tip
	Pinned     bool

	hash repo.Hash // Hash, as Plan parsed and checked it
}

// PullPlan is what a Pull will do: branches to move and branches to prune.
type PullPlan struct {
	Targets []Target // sorted by zone, name
	Prune   []repo.Ref
	// Tags are the primary's tags within the zone filter, when the primary
	// offers the "tags" extension (sorted by zone, name).
	Tags []Target
	// Invalid lists selected branches and tags the primary advertised with
	// a name or hash that cannot be used (hostile or corrupt); a pull
	// reports each as a failed branch.
	Invalid []*BranchError
}

// Refs returns the refs a local repository will have after the plan is
// applied, as "<zone>/<branch>" => hex.
func (p *PullPlan) Refs(local []repo.Ref) map[string]string {
	out := map[string]string{}
	for _, r := range local {
		out[r.Zone+"/"+r.Name] = r.Hash.String()
	}
	for _, r := range p.Prune {
		delete(out, r.Zone+"/"+r.Name)
	}
	for _, t := range p.Targets {
		out[t.Zone+"/"+t.Name] = t.Hash
	}
	return out
}

// BranchResult is the outcome for one branch.
type BranchResult struct {
	Zone, Name string
	Old, New   string // hex; "" = absent
	Objects    int    // objects fetched for this branch
	Bytes      int64
	Pruned     bool
	Tag        bool  // a tag rather than a branch
	Err        error // nil when the branch was applied
}

// PullResult is the outcome of one Pull.
type PullResult struct {
	Primary  string
	Branches []BranchResult
	Objects  int   // objects fetched and stored
	Bytes    int64 // payload bytes fetched
	Requests int   // HTTP requests made (including retries)
	Duration time.Duration
}

// NewClient builds a Client with sensible defaults: 5s poll interval, 30s
// per-request HTTP timeout. It never fails: a malformed URL, or HTTP
// machinery that cannot be built (http.DefaultTransport replaced by a type
// it cannot clone), is reported by every Pull and every pull Run makes.
// NewClientWithOptions reports both at once.
func NewClient(primaryURL string, local *repo.Repo) *Client {
	opts := ClientOptions{PrimaryURL: primaryURL}
	opts.setDefaults()
	c := &Client{PrimaryURL: primaryURL, Local: local, Interval: defaultInterval, opts: opts}
	tr, err := newTransport(&opts)
	if err != nil {
		c.initErr = fmt.Errorf("client for primary %q: %w", clipStr(primaryURL), err)
		return c
	}
	c.HTTP, c.tr = tr.hc, tr
	return c
}

// WithDefaults returns o with every zero setting replaced by the default a
// client uses for it, so callers can show (log, document) the settings that
// are actually in effect rather than zero values.
func (o ClientOptions) WithDefaults() ClientOptions {
	o.setDefaults()
	return o
}

func (o *ClientOptions) setDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	if o.RetryAttempts < 0 {
		o.RetryAttempts = 0
	} else if o.RetryAttempts == 0 {
		o.RetryAttempts = defaultRetryAttempts
	}
	if o.RetryMinDelay <= 0 {
		o.RetryMinDelay = defaultRetryMinDelay
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = defaultRetryMaxDelay
	}
	if o.RetryMaxDelay < o.RetryMinDelay {
		o.RetryMaxDelay = o.RetryMinDelay
	}
	if o.UserAgent == "" {
		o.UserAgent = defaultUserAgent
	}
	if o.StallWindow <= 0 {
		o.StallWindow = defaultStallWindow
	}
	if o.StallMinRate == 0 {
		o.StallMinRate = defaultStallMinRate
	}
}

// NewClientWithOptions builds a Client from options, validating the URL
// (http or https) and TLS material. local may be nil for a client that only
// reads refs. RetryAttempts 0 means the default; a negative value disables
// retries.
func NewClientWithOptions(local *repo.Repo, opts ClientOptions) (*Client, error) {
	if _, err := parsePrimaryURL(opts.PrimaryURL); err != nil {
		return nil, err
	}
	opts.setDefaults()
	tr, err := newTransport(&opts)
	if err != nil {
		return nil, err
	}
	return &Client{PrimaryURL: opts.PrimaryURL, Local: local, Interval: defaultInterval, HTTP: tr.hc, opts: opts, tr: tr}, nil
}

// transport returns the HTTP machinery for the current PrimaryURL and HTTP
// fields (both may be changed after construction, as in the seed API).
func (c *Client) transport() (*transport, error) {
	if c.initErr != nil {
		return nil, c.initErr
	}
	if c.tr == nil { // a Client built as a struct literal
		opts := c.opts
		opts.PrimaryURL = c.PrimaryURL
		opts.setDefaults()
		tr, err := newTransport(&opts)
		if err != nil {
			return nil, err
		}
		c.opts, c.tr = opts, tr
		if c.HTTP == nil {
			c.HTTP = tr.hc
		}
	}
	base, err := parsePrimaryURL(c.PrimaryURL)
	if err != nil {
		return nil, err
	}
	return c.tr.with(base, c.HTTP), nil
}

// RefsInfo is the primary's refs plus what it announced about itself.
type RefsInfo struct {
	Refs *RefsResponse
	// Capabilities are the extensions the primary announced (empty for a
	// v0 daemon, or when the client is V0Only).
	Capabilities []string
}

// Has reports whether the primary announced the extension.
func (r *RefsInfo) Has(capability string) bool {
	for _, c := range r.Capabilities {
		if c == capability {
			return true
		}
	}
	return false
}

// RefsInfo fetches the primary's refs and announced capabilities (retried).
// Tags are only kept when the "tags" capability is announced.
func (c *Client) RefsInfo(ctx context.Context) (*RefsInfo, error) {
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	return c.refsInfo(ctx, tr)
}

func (c *Client) refsInfo(ctx context.Context, tr *transport) (*RefsInfo, error) {
	resp, err := tr.do(ctx, http.MethodGet, wire.RefsPath, nil, "")
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, fmt.Errorf("GET %s%s: content type %q, want application/json (is this a zonegit primary?)", tr.base, wire.RefsPath, clipStr(ct))
	}
	refs, err := wire.DecodeRefs(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s%s: %w", tr.base, wire.RefsPath, err)
	}
	info := &RefsInfo{Refs: refs}
	if !c.opts.V0Only {
		seen := map[string]bool{}
		for _, v := range resp.Header.Values(wire.CapabilitiesHeader) {
			for _, f := range strings.Split(v, ",") {
				if f = strings.ToLower(strings.TrimSpace(f)); f != "" && !seen[f] {
					seen[f] = true
					info.Capabilities = append(info.Capabilities, f)
				}
			}
		}
		sort.Strings(info.Capabilities)
	}
	if !info.Has(wire.CapTags) {
		refs.Tags = nil
	}
	return info, nil
}

// Pull performs one full sync cycle of every branch: refs -> missing-walk ->
// fetch -> ref advance. Safe to call directly (without Run). It is
// PullWith with zero PullOptions, for a caller that needs only the error.
func (c *Client) Pull(ctx context.Context) error {
	_, err := c.PullWith(ctx, PullOptions{})
	return err
}

// Run pulls (PullFunc, or PullWith with zero PullOptions: every branch) at once and
// then after every wait until ctx is done or Stop is called, and reports
// each pull to OnPull and to the Logger. The wait is Interval after a
// success; after n consecutive failures it is Interval·2^n, capped at
// MaxBackoff, less a random part of up to half (so replicas that failed
// together do not retry together), and never below Interval. Pulls never
// overlap, with each other or with a Pull or PullWith called meanwhile:
// those wait for the pull in flight.
//
// Stop and ctx's end interrupt both a pull in flight and the wait. Run
// returns nil when stopped and ctx's error when ctx ends; once it has
// returned no pull of its own is running, so Local may be closed.
func (c *Client) Run(ctx context.Context) error {
	stop := c.stopChan()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	// ended says why the loop must end, if it must.
	ended := func() (bool, error) {
		select {
		case <-stop:
			return true, nil
		default:
		}
		if err := ctx.Err(); err != nil {
			return true, err
		}
		return false, nil
	}
	failures := 0
	for {
		if done, err := ended(); done {
			return err
		}
		var res *PullResult
		var err error
		if c.PullFunc != nil {
			res, err = c.PullFunc(ctx)
		} else {
			res, err = c.PullWith(ctx, PullOptions{})
		}
		if done, endErr := ended(); done {
			return endErr // the pull was cut short, not failed
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		wait := c.runWait(failures)
		if res != nil || err != nil {
			c.reportPull(res, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// defaultMaxBackoff caps Run's wait after failures: long enough that a
// primary down for hours sees a trickle of requests from each replica, short
// enough that replication resumes within minutes of its return.
const defaultMaxBackoff = 5 * time.Minute

// runWait is Run's wait before the next pull after the given number of
// consecutive failures.
func (c *Client) runWait(failures int) time.Duration {
	interval := c.Interval
	if interval <= 0 {
		interval = defaultInterval
	}
	if failures == 0 {
		return interval
	}
	limit := c.MaxBackoff
	if limit <= 0 {
		limit = defaultMaxBackoff
	}
	if limit < interval {
		limit = interval
	}
	d := interval
	for i := 0; i < failures && d < limit; i++ {
		d *= 2
	}
	if d > limit {
		d = limit
	}
	// Equal jitter: keep at least half the backoff, spread the rest.
	d -= rand.N(d/2 + 1) //nolint:gosec // timing jitter, not a secret
	if d < interval {
		d = interval
	}
	return d
}

func (c *Client) reportPull(res *PullResult, err error, wait time.Duration) {
	if res == nil { // PullWith always returns one; keep OnPull's promise anyway
		res = &PullResult{Primary: c.PrimaryURL}
	}
	if l := c.opts.Logger; l != nil {
		if err != nil {
			l.Error("pull failed", "primary", res.Primary, "error", err.Error(), "next_pull_in", wait.String())
		} else if res.Objects > 0 {
			l.Info("pulled", "primary", res.Primary, "objects", res.Objects, "bytes", res.Bytes, "duration", res.Duration.String())
		}
	}
	if c.OnPull != nil {
		c.OnPull(res, err)
	}
}

func (c *Client) stopChan() chan struct{} {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopCh == nil {
		c.stopCh = make(chan struct{})
	}
	return c.stopCh
}

// Stop ends a running Run loop (and any Run started later), interrupting
// its pull in flight. It returns at once, without waiting for Run to
// return; it is safe to call more than once and from OnPull.
func (c *Client) Stop() {
	stop := c.stopChan()
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	select {
	case <-stop:
	default:
		close(stop)
	}
}
