package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/internal/memlimit"
	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func init() {
	register("pull", "replicate branches from a primary into a local repository", runPull)
}

// repeatedFlag collects a flag given several times.
type repeatedFlag []string

func (r *repeatedFlag) String() string     { return strings.Join(*r, ",") }
func (r *repeatedFlag) Set(v string) error { *r = append(*r, v); return nil }

type pullConfig struct {
	primary, repo string
	zones         repeatedFlag
	branches      repeatedFlag
	pins          map[string]string
	prune, json   bool
	tokenFile     string
	tls           clientTLSFlags
	v0Only        bool
	timeout       time.Duration // per request
	total         time.Duration // --timeout
	concurrency   int
}

func parsePullFlags(args []string, stderr io.Writer) (*pullConfig, error) {
	fs := newFlagSet("pull", stderr)
	c := &pullConfig{pins: map[string]string{}}
	var pins repeatedFlag
	fs.StringVar(&c.primary, "primary", "", "primary URL, http(s)://host:port (required)")
	fs.StringVar(&c.repo, "repo", "", "local repository directory, created if absent (required)")
	fs.Var(&c.zones, "zone", "zone to replicate, exact or glob (repeatable; default all)")
	fs.Var(&c.branches, "branch", "branch to replicate, exact or glob (repeatable; default all)")
	fs.Var(&pins, "pin", "ZONE/BRANCH=HASH: replicate that commit instead of the primary's tip (repeatable)")
	fs.BoolVar(&c.prune, "prune", false, "delete local branches (within the selection) and tags (within the zones) the primary no longer has; tags only against a primary that lists them")
	fs.BoolVar(&c.json, "json", false, "print the result as JSON on stdout")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the primary's bearer token")
	c.tls.register(fs)
	fs.BoolVar(&c.v0Only, "v0-only", false, "ignore the primary's extensions (plain v0 protocol)")
	fs.DurationVar(&c.timeout, "request-timeout", 30*time.Second, "per-request timeout (response headers, longest silence)")
	registerTimeout(fs, &c.total, time.Hour)
	fs.IntVar(&c.concurrency, "concurrency", 8, "parallel object GETs against a v0 primary")
	if err := parseArgs(fs, args, "primary", "repo"); err != nil {
		return nil, err
	}
	if err := checkPrimary(c.primary); err != nil {
		return nil, err
	}
	if err := checkTimeout(c.total); err != nil {
		return nil, err
	}
	switch {
	case c.timeout <= 0:
		return nil, fmt.Errorf("--request-timeout %s: must be positive", c.timeout)
	case c.concurrency <= 0:
		return nil, fmt.Errorf("--concurrency %d: must be positive", c.concurrency)
	}
	if err := c.tls.check(); err != nil {
		return nil, err
	}
	// A zone without its trailing dot, or in upper case, would match
	// nothing and pull an empty replica: a usage error naming it.
	for _, z := range c.zones {
		if err := replicate.ValidateZonePattern(z); err != nil {
			return nil, fmt.Errorf("--zone: %w", err)
		}
	}
	for _, p := range pins {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("--pin %q: want ZONE/BRANCH=HASH", p)
		}
		if _, dup := c.pins[k]; dup {
			return nil, fmt.Errorf("--pin %q: %s pinned twice", p, k)
		}
		c.pins[k] = v
	}
	return c, nil
}

// clientOptions builds the options of a client of primary from the
// command's flags: the token file (named by tokenFlag), the TLS flags and
// the user agent. Every error is the command line's fault.
func clientOptions(primary, tokenFlag, tokenFile string, tlsFlags *clientTLSFlags) (replicate.ClientOptions, error) {
	token, err := tokenFromFile(tokenFlag, tokenFile)
	if err != nil {
		return replicate.ClientOptions{}, err
	}
	opts := replicate.ClientOptions{PrimaryURL: primary, Token: token, UserAgent: "zonegit-replicate/" + version}
	if err := tlsFlags.load(&opts); err != nil {
		return replicate.ClientOptions{}, err
	}
	return opts, nil
}

// pullJSON is the --json shape of a pull result.
type pullJSON struct {
	Primary    string       `json:"primary"`
	Objects    int          `json:"objects"`
	Bytes      int64        `json:"bytes"`
	Requests   int          `json:"requests"`
	DurationMS int64        `json:"duration_ms"`
	Branches   []branchJSON `json:"branches"`
}

type branchJSON struct {
	Zone    string `json:"zone"`
	Name    string `json:"name"`
	Tag     bool   `json:"tag,omitempty"`
	Old     string `json:"old"`
	New     string `json:"new"`
	Objects int    `json:"objects"`
	Bytes   int64  `json:"bytes"`
	Pruned  bool   `json:"pruned,omitempty"`
	Error   string `json:"error,omitempty"`
}

// pullMemoryFloor is the floor of pull's soft heap limit, which follows
// the live heap (memlimit.Follow: a quarter above it).
//
// History: a fixed limit must sit above the live heap of the largest pull
// it is meant for, or the collector runs without pause. When a full pull
// of a 1M-record flat zone held 240-350 MB live (the received-object set,
// the closure check's tree set and stack, the apex tree, Badger's table
// builders) a 192 MiB limit collected 2,879 times and spent 54 CPU seconds
// where 384 MiB took 130 collections and 31 s; and with the live heap at
// ~223 MiB, 256 MiB saved only 14 MiB of private memory over 384 MiB. So
// the limit was 384 MiB, and the heap grew to twice its largest live size
// (GOGC=100): ~255 MiB private at 1M.
//
// Now a first pull is proven by its stream (no closure walk, no tree
// arena) and the live heap is 55-110 MB for most of a 1M pull, 128 MB for
// the moment the apex tree (40 MB, held as its frame and as the value
// stored) is in flight. Following the live heap with a 160 MiB floor:
// 1M CLI pull 152 MiB private instead of 254 MiB, 58 collections instead
// of 50, client CPU the same within the noise (15.2 s vs 15.7 s at load
// 8). A pull larger than this was measured for collects more often in
// proportion to its live heap instead of grinding against a fixed limit.
const pullMemoryFloor = 160 << 20

// incrementalGCPercent is the collector's pace (GOGC) for a pull into a
// repository that already has tables: an incremental pull, whose heap
// stays a few MB (one changed record in a 100k flat zone peaks near
// 15 MB: the apex tree as received and as stored, Badger's memtable
// arena). At GOGC=100 the collector ran twice in such a pull, from 4 MB,
// each cycle waking the second core for marking while the pull needs it:
// ~7 ms of the process's ~55 ms CPU (task-clock, interleaved runs at load
// 4); at load 7, CPU median 129 -> 111 ms, and 155 -> 107 ms for a pull
// whose Close merges level 0 (its compaction allocates too). At 800 the
// first goal is 32 MB, so such a pull collects once, while Badger opens
// (before this is set); a larger pull is still held to pullMemoryFloor by
// the soft limit (memlimit), which makes the collector run whenever the
// heap reaches it.
const incrementalGCPercent = 800

// incrementalGC sets incrementalGCPercent, unless the user chose a pace
// (GOGC) or a limit (GOMEMLIMIT, which replaces memlimit's).
func incrementalGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(incrementalGCPercent)
}

func runPull(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parsePullFlags(args, stderr)
	if err != nil {
		return parseFailed(stderr, "pull", err)
	}
	defer memlimit.Follow(pullMemoryFloor)()
	opts, err := clientOptions(cfg.primary, "--token-file", cfg.tokenFile, &cfg.tls)
	if err != nil {
		return failUsage(stderr, "pull: %v", err)
	}
	opts.V0Only, opts.RequestTimeout, opts.Concurrency = cfg.v0Only, cfg.timeout, cfg.concurrency
	// Validate the URL and pins before touching the repository.
	if _, err := replicate.NewClientWithOptions(nil, opts); err != nil {
		return failUsage(stderr, "pull: --primary: %v", err)
	}
	if _, err := replicate.Plan(nil, nil, replicate.PullOptions{Zones: cfg.zones, Branches: cfg.branches, Pins: cfg.pins}); err != nil {
		return failUsage(stderr, "pull: %v", err)
	}
	// Bulk: a first pull into a new repository is one bulk load, merged
	// into one level at Close (see repo.Options.Bulk); later pulls are not.
	local, err := repo.Open(cfg.repo, repo.Options{Bulk: true})
	if err != nil {
		return fail(stderr, "pull: %v", err)
	}
	defer local.Close()
	if !local.BulkLoad() {
		incrementalGC()
	}
	c, err := replicate.NewClientWithOptions(local, opts)
	if err != nil {
		return failUsage(stderr, "pull: %v", err)
	}
	ctx, cancel := withTimeout(ctx, "pull", cfg.total)
	defer cancel()
	start := time.Now()
	progress := func(p replicate.Progress) {
		// Only long pulls report, so short ones stay quiet.
		if time.Since(start) > 2*time.Second {
			fmt.Fprintf(stderr, "pull: %d/%d objects, %d bytes\n", p.Objects, p.Total, p.Bytes)
		}
	}
	res, err := c.PullWith(ctx, replicate.PullOptions{Zones: cfg.zones, Branches: cfg.branches, Pins: cfg.pins, Prune: cfg.prune, Progress: progress})
	// Close now rather than only in the defer: a failed close can mean the
	// pulled data did not reach the disk, which is a failed pull.
	if cerr := local.Close(); cerr != nil {
		fail(stderr, "pull: closing %s: %v", cfg.repo, cerr)
		if err == nil {
			return exitFailed
		}
	}
	if res != nil {
		printPullResult(res, cfg.json, stdout, stderr)
	}
	if err != nil {
		var pe *replicate.PullError
		if errors.As(err, &pe) {
			for _, f := range pe.Failed {
				fail(stderr, "pull: %v", f)
			}
			return exitFailed
		}
		return fail(stderr, "pull: %v", err)
	}
	return exitOK
}

// printPullResult reports a pull: per ref on stdout and a summary on
// stderr, or everything as JSON on stdout.
func printPullResult(res *replicate.PullResult, asJSON bool, stdout, stderr io.Writer) {
	if asJSON {
		out := pullJSON{Primary: res.Primary, Objects: res.Objects, Bytes: res.Bytes, Requests: res.Requests,
			DurationMS: res.Duration.Milliseconds(), Branches: []branchJSON{}}
		for _, b := range res.Branches {
			bj := branchJSON{Zone: b.Zone, Name: b.Name, Tag: b.Tag, Old: b.Old, New: b.New, Objects: b.Objects, Bytes: b.Bytes, Pruned: b.Pruned}
			if b.Err != nil {
				bj.Error = b.Err.Error()
			}
			out.Branches = append(out.Branches, bj)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		for _, b := range res.Branches {
			what := "branch"
			if b.Tag {
				what = "tag"
			}
			switch {
			case b.Err != nil:
			case b.Pruned:
				fmt.Fprintf(stdout, "%s %s/%s: pruned (was %s)\n", what, replicate.DisplayName(b.Zone), replicate.DisplayName(b.Name), replicate.ShortHash(b.Old, ""))
			case b.Old == b.New:
				fmt.Fprintf(stdout, "%s %s/%s: up to date at %s\n", what, replicate.DisplayName(b.Zone), replicate.DisplayName(b.Name), replicate.ShortHash(b.New, ""))
			default:
				fmt.Fprintf(stdout, "%s %s/%s: %s -> %s (%d objects)\n", what, replicate.DisplayName(b.Zone), replicate.DisplayName(b.Name),
					replicate.ShortHash(b.Old, "(none)"), replicate.ShortHash(b.New, ""), b.Objects)
			}
		}
		fmt.Fprintf(stderr, "pulled %d objects (%d bytes) in %d requests, %s\n", res.Objects, res.Bytes, res.Requests, res.Duration.Round(time.Millisecond))
	}
}
