package replicate

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Client is a secondary's pull-replication client. Construct one per
// (primary, local-repo) pair with NewClient or NewClientWithOptions and call
// Pull (one pass) or Run (polling loop).
type Client struct {
	PrimaryURL string
	Local      *repo.Repo
	Interval   time.Duration
	HTTP       *http.Client

	opts ClientOptions
	// TODO(client): retrying client, stop channel, etc.
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
	Logger         Logger            // nil: silent
	V0Only         bool              // ignore advertised extensions (tests, debugging)
}

// Logger receives leveled log lines with key/value pairs (the shape of
// go-retryablehttp's LeveledLogger, so tflog can be plugged in).
type Logger interface {
	Error(msg string, keysAndValues ...interface{})
	Info(msg string, keysAndValues ...interface{})
	Debug(msg string, keysAndValues ...interface{})
	Warn(msg string, keysAndValues ...interface{})
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
	// no longer has (pinned branches are never pruned).
	Prune bool
	// Progress, when set, is called as objects arrive (for long pulls).
	Progress func(Progress)
}

// Progress reports a pull in flight.
type Progress struct {
	Objects, Total int
	Bytes          int64
}

// Target is one branch a pull will move (the output of Plan).
type Target struct {
	Zone, Name string
	Hash       string // hex; the pin if pinned, else the primary's tip
	Pinned     bool
}

// PullPlan is what a Pull will do: branches to move and branches to prune.
type PullPlan struct {
	Targets []Target // sorted by zone, name
	Prune   []repo.Ref
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
// per-request HTTP timeout.
func NewClient(primaryURL string, local *repo.Repo) *Client {
	c, err := NewClientWithOptions(local, ClientOptions{PrimaryURL: primaryURL})
	if err != nil {
		// Only bad TLS material can fail, and there is none here.
		panic(err)
	}
	return c
}

// NewClientWithOptions builds a Client from options, validating the URL
// (http or https) and TLS material. local may be nil for a client that only
// reads refs.
func NewClientWithOptions(local *repo.Repo, opts ClientOptions) (*Client, error) {
	return nil, errors.New("TODO(client): not implemented")
}

// Plan selects targets and prunes from the primary's refs and the local
// branches, without any I/O. Bad filters, pins or hashes are errors naming
// the value.
func Plan(primary *RefsResponse, local []repo.Ref, opts PullOptions) (*PullPlan, error) {
	return nil, errors.New("TODO(client): not implemented")
}

// Refs fetches the primary's refs (retried).
func (c *Client) Refs(ctx context.Context) (*RefsResponse, error) {
	return nil, errors.New("TODO(client): not implemented")
}

// Pull performs one full sync cycle of every branch: refs -> missing-walk ->
// fetch -> ref advance. Safe to call directly (without Run).
func (c *Client) Pull(ctx context.Context) error {
	_, err := c.PullWith(ctx, PullOptions{})
	return err
}

// PullWith performs one sync cycle with options and reports per branch. Any
// branch error makes it return an error listing each failed branch; the
// branches that succeeded stay applied and appear in the result.
func (c *Client) PullWith(ctx context.Context, opts PullOptions) (*PullResult, error) {
	return nil, errors.New("TODO(client): not implemented")
}

// Run polls every Interval until ctx is done or Stop is called.
func (c *Client) Run(ctx context.Context) error {
	return errors.New("TODO(client): not implemented")
}

// Stop ends a running Run loop.
func (c *Client) Stop() {}
