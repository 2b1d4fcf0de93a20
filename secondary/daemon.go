package secondary

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Config is a daemon's configuration: everything comes from its operator,
// nothing from a control request (the primary above all).
type Config struct {
	// Dir is the replica directory. The daemon is its only writer while it
	// runs (a second daemon or pull gets repo.ErrLocked). It must be
	// absent, empty, or a zonegit repository.
	Dir string
	// StatePath is the desired-state file; default DefaultStatePath(Dir).
	StatePath string
	// Primary is how the daemon reaches its primary (URL, token, TLS).
	Primary replicate.ClientOptions
	// Follow is the interval of following; 0: pull only when told.
	Follow time.Duration
	// ControlToken is the bearer token of the control API (required).
	ControlToken string
	// ReadToken, when set, protects the replication protocol (/v0) like
	// serve's --token-file; the control token does not open it.
	ReadToken string
	// Server, when set, adjusts the replication server before it serves
	// (limits, logger, V0Only).
	Server func(*replicate.Server)
	// Logf receives one line per pull and the daemon's other messages;
	// nil discards them.
	Logf func(format string, args ...any)
}

// maxPulls is how many pull reports GET /pulls keeps.
const maxPulls = 20

// Daemon is a running secondary: see the package documentation.
type Daemon struct {
	cfg    Config
	local  *repo.Repo
	client *replicate.Client
	server *replicate.Server
	logf   func(string, ...any)

	// sem is the one-pull-at-a-time lock, shared by PUT /desired, DELETE
	// /desired and the follow loop; a channel so that waiting can end
	// with a request's context.
	sem  chan struct{}
	busy atomic.Bool

	mu        sync.Mutex
	desired   *Desired
	pulls     []PullReport // newest first
	firstPull bool         // the follow loop has not pulled yet

	// life guards the repository handle: every user holds a read lock;
	// Close takes the write lock before closing the handle.
	life   sync.RWMutex
	closed bool

	ctx      context.Context // ended by Close: aborts pulls in flight
	cancel   context.CancelFunc
	runDone  chan struct{}
	runErr   error
	closeErr error
	once     sync.Once
}

// New opens the replica for writing, reads the desired state and, with
// Follow set and a desired state that says follow, starts following.
func New(cfg Config) (*Daemon, error) {
	if cfg.Dir == "" {
		return nil, errors.New("secondary: no replica directory")
	}
	if cfg.ControlToken == "" {
		return nil, errors.New("secondary: no control token")
	}
	if cfg.Follow < 0 {
		return nil, fmt.Errorf("secondary: follow interval %s: must not be negative", cfg.Follow)
	}
	if err := replicate.ValidatePrimaryURL(cfg.Primary.PrimaryURL); err != nil {
		return nil, fmt.Errorf("secondary: %w", err)
	}
	if cfg.StatePath == "" {
		cfg.StatePath = DefaultStatePath(cfg.Dir)
	}
	// Inside the replica directory the state file would be a foreign
	// file there: the next start would refuse the directory.
	if rel, err := filepath.Rel(stateOwner(cfg.Dir), stateOwner(cfg.StatePath)); err == nil && rel != ".." &&
		!strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("secondary: state file %s is inside the replica directory %s, which must hold only the repository; put it beside the directory (the default) or elsewhere", cfg.StatePath, cfg.Dir)
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	desired, err := loadState(cfg.StatePath, cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("secondary: %w", err)
	}
	// The state is written on the first apply; a directory that is not
	// there would fail that apply after its pull, so refuse it now.
	if fi, err := os.Stat(filepath.Dir(cfg.StatePath)); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("secondary: state file %s: directory %s: %w", cfg.StatePath, filepath.Dir(cfg.StatePath), err)
	}
	if err := removeStaleTemps(cfg.StatePath); err != nil {
		return nil, fmt.Errorf("secondary: %w", err)
	}
	if desired != nil && desired.Follow && cfg.Follow <= 0 {
		logf("warning: the desired state says follow, but the daemon runs without a follow interval: it holds the refs until told")
	}
	// Only a directory that is absent, empty or a repository: the daemon
	// writes into no other, so a wrong --repo cannot damage anything.
	info, err := repo.InspectDir(cfg.Dir)
	if err == nil {
		err = info.Check()
	}
	if err != nil {
		return nil, fmt.Errorf("secondary: replica directory: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("secondary: replica directory: %w", err)
	}
	local, err := repo.Open(cfg.Dir, repo.Options{})
	if err != nil {
		return nil, fmt.Errorf("secondary: %w", err)
	}
	client, err := replicate.NewClientWithOptions(local, cfg.Primary)
	if err != nil {
		local.Close()
		return nil, fmt.Errorf("secondary: primary: %w", err)
	}
	d := &Daemon{cfg: cfg, local: local, client: client, logf: logf, desired: desired,
		sem: make(chan struct{}, 1), firstPull: true, runDone: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.server = &replicate.Server{Snapshots: d, Token: cfg.ReadToken}
	if cfg.Server != nil {
		cfg.Server(d.server)
	}
	if cfg.Follow > 0 {
		client.Interval = cfg.Follow
		client.PullFunc = d.followPull
		go func() {
			defer close(d.runDone)
			d.runErr = client.Run(d.ctx)
		}()
	} else {
		close(d.runDone)
	}
	return d, nil
}

// Acquire hands the replication server the daemon's own handle: the only
// open of the directory. A reader sees refs that only ever name complete
// closures, since a pull moves a ref only after storing what it names.
func (d *Daemon) Acquire() (*repo.Repo, func(), error) {
	if !d.enter() {
		return nil, nil, errors.New("secondary daemon is shutting down")
	}
	return d.local, d.leave, nil
}

// enter registers a user of the handle; false once Close has begun.
func (d *Daemon) enter() bool {
	d.life.RLock()
	if d.closed {
		d.life.RUnlock()
		return false
	}
	return true
}

func (d *Daemon) leave() { d.life.RUnlock() }

// Close stops following (aborting a pull in flight: refs are never left at
// incomplete closures), waits for the requests using the replica and
// closes it. Shut the HTTP server down first to let requests finish.
func (d *Daemon) Close() error {
	d.once.Do(func() {
		d.cancel()
		d.client.Stop()
		<-d.runDone
		d.life.Lock()
		d.closed = true
		d.life.Unlock()
		d.closeErr = d.local.Close()
	})
	return d.closeErr
}

// lock takes the pull lock, waiting at most until ctx ends.
func (d *Daemon) lock(ctx context.Context) error {
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (d *Daemon) unlock() { <-d.sem }

// Desired returns a copy of the desired state (nil: none).
func (d *Daemon) Desired() *Desired {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.desired.clone()
}

// followPull is the follow loop's pull (replicate.Client.PullFunc): by the
// desired state of the moment, when it says follow. A follow round is an
// apply without a plan to hold to: the same plan (Client.PlanRefs, which
// with prune also drops the branches the selection no longer selects) and
// the same exact pull (PullOptions.Exactly), so following and applying
// never disagree about what a desired state means.
func (d *Daemon) followPull(ctx context.Context) (*replicate.PullResult, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.unlock()
	d.mu.Lock()
	trigger := TriggerFollow
	if d.firstPull {
		// The round right after the daemon started, whether or not it
		// pulls: a later first pull (after an apply) is a follow.
		trigger, d.firstPull = TriggerStart, false
	}
	d.mu.Unlock()
	desired := d.Desired()
	if desired == nil || !desired.Follow {
		return nil, nil // nothing to follow: hold the refs
	}
	p, herr := d.plan(ctx, desired)
	if herr != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx) // shutting down: not a failed round
		}
		// Nothing was pulled; the report says why, as a pull's would.
		d.record(PullReport{Started: time.Now().UTC(), Primary: d.client.PrimaryURL, Trigger: trigger,
			Moved: []RefMove{}, Error: herr.msg})
		return nil, herr
	}
	res, _, err := d.pull(ctx, trigger, desired.pullOptions().Exactly(p.Refs), p.Refs)
	return res, err
}

// pull runs one pull under the pull lock, records it and logs it. expect,
// when set, is checked against the refs after the pull.
func (d *Daemon) pull(ctx context.Context, trigger string, opts replicate.PullOptions, expect map[string]string) (*replicate.PullResult, PullReport, error) {
	d.busy.Store(true)
	defer d.busy.Store(false)
	start := time.Now()
	res, err := d.client.PullWith(ctx, opts)
	rep := PullReport{Started: start.UTC(), DurationMS: time.Since(start).Milliseconds(), Primary: d.client.PrimaryURL,
		Trigger: trigger, Moved: []RefMove{}}
	if res != nil {
		rep.DurationMS, rep.Objects, rep.Bytes = res.Duration.Milliseconds(), res.Objects, res.Bytes
		if res.Primary != "" {
			rep.Primary = res.Primary
		}
		for _, b := range res.Branches {
			ref := b.Zone + "/" + b.Name
			if b.Err != nil {
				rep.Errors = append(rep.Errors, BranchFail{Ref: ref, Error: b.Err.Error()})
				continue
			}
			if b.Old != b.New || b.Pruned {
				m := RefMove{Ref: ref, Old: b.Old, New: b.New, Pruned: b.Pruned, Tag: b.Tag}
				if b.Pruned {
					m.New = ""
				}
				rep.Moved = append(rep.Moved, m)
			}
		}
	}
	if err != nil {
		rep.Error = err.Error()
	} else if expect != nil {
		if got, lerr := d.branches(); lerr != nil {
			rep.Error = lerr.Error()
		} else if !maps.Equal(got, expect) {
			rep.Error = "after the pull the refs differ from the expected ones (another writer, or a primary that changed what it serves): " + replicate.RefsDiff(expect, got, "expected", "(none)")
		}
	}
	d.record(rep)
	return res, rep, err
}

// record keeps a pull report and logs it as one line.
func (d *Daemon) record(rep PullReport) {
	d.mu.Lock()
	d.pulls = append([]PullReport{rep}, d.pulls...)
	if len(d.pulls) > maxPulls {
		d.pulls = d.pulls[:maxPulls]
	}
	d.mu.Unlock()
	var moved []string
	for _, m := range rep.Moved {
		switch {
		case m.Pruned:
			moved = append(moved, fmt.Sprintf("%s pruned (was %s)", replicate.DisplayName(m.Ref), replicate.ShortHash(m.Old, "")))
		default:
			moved = append(moved, fmt.Sprintf("%s %s->%s", replicate.DisplayName(m.Ref), replicate.ShortHash(m.Old, "(none)"), replicate.ShortHash(m.New, "")))
		}
	}
	line := fmt.Sprintf("pull trigger=%s primary=%s moved=%d [%s] objects=%d bytes=%d duration=%dms",
		rep.Trigger, rep.Primary, len(rep.Moved), strings.Join(moved, ", "), rep.Objects, rep.Bytes, rep.DurationMS)
	if len(rep.Errors) > 0 {
		line += fmt.Sprintf(" failed=%d", len(rep.Errors))
	}
	if rep.Error != "" {
		line += " error=" + wire.SafeText(rep.Error)
	}
	d.logf("%s", line)
}

// Pulls returns the last pull reports, newest first.
func (d *Daemon) Pulls() []PullReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]PullReport{}, d.pulls...)
}

// branches returns the replica's branches as "<zone>/<branch>" -> hex.
func (d *Daemon) branches() (map[string]string, error) {
	refs, err := d.local.Branches("")
	if err != nil {
		return nil, fmt.Errorf("listing the replica's branches: %w", err)
	}
	return replicate.RefsMap(refs), nil
}

// Status reports the daemon's state now.
func (d *Daemon) Status() (*Status, error) {
	if !d.enter() {
		return nil, errors.New("secondary daemon is closed")
	}
	defer d.leave()
	return d.status()
}

func (d *Daemon) status() (*Status, error) {
	refs, err := d.branches()
	if err != nil {
		return nil, err
	}
	tags, err := d.local.Tags("")
	if err != nil {
		return nil, fmt.Errorf("listing the replica's tags: %w", err)
	}
	st := &Status{Primary: d.client.PrimaryURL, Refs: refs, Busy: d.busy.Load()}
	if d.cfg.Follow > 0 {
		st.Follow = d.cfg.Follow.String()
	}
	if len(tags) > 0 {
		st.Tags = replicate.RefsMap(tags)
	}
	d.mu.Lock()
	st.Desired = d.desired.clone()
	if len(d.pulls) > 0 {
		last := d.pulls[0]
		st.LastPull = &last
	}
	d.mu.Unlock()
	return st, nil
}

// Handler serves the replication protocol (read-only, replicate.BasePath,
// protected by Config.ReadToken) and the control API (ControlPath,
// protected by Config.ControlToken) on one listener.
func (d *Daemon) Handler() http.Handler {
	rep := d.server.Handler()
	ctl := d.controlHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == ControlPath || strings.HasPrefix(r.URL.Path, ControlPath+"/") {
			ctl.ServeHTTP(w, r)
			return
		}
		rep.ServeHTTP(w, r)
	})
}
