package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

func init() {
	register("refs", "list a primary's zones, branches and tags", runRefs)
}

type refsConfig struct {
	primary, tokenFile string
	tls                clientTLSFlags
	json               bool
	timeout            time.Duration // per request
	total              time.Duration // --timeout
}

func parseRefsFlags(args []string, stderr io.Writer) (*refsConfig, error) {
	fs := newFlagSet("refs", stderr)
	c := &refsConfig{}
	fs.StringVar(&c.primary, "primary", "", "primary URL, http(s)://host:port (required)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the primary's bearer token")
	c.tls.register(fs)
	fs.BoolVar(&c.json, "json", false, "print JSON (the /v0/refs shape plus capabilities)")
	fs.DurationVar(&c.timeout, "request-timeout", 30*time.Second, "per-request timeout (response headers, longest silence)")
	registerTimeout(fs, &c.total, 10*time.Minute)
	if err := parseArgs(fs, args, "primary"); err != nil {
		return nil, err
	}
	if err := checkPrimary(c.primary); err != nil {
		return nil, err
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("--request-timeout %s: must be positive", c.timeout)
	}
	if err := checkTimeout(c.total); err != nil {
		return nil, err
	}
	if err := c.tls.check(); err != nil {
		return nil, err
	}
	return c, nil
}

type refsJSON struct {
	Zones        []string           `json:"zones"`
	Branches     []replicate.Branch `json:"branches"`
	Tags         []replicate.Branch `json:"tags,omitempty"`
	Capabilities []string           `json:"capabilities"`
}

func runRefs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseRefsFlags(args, stderr)
	if err != nil {
		return parseFailed(stderr, "refs", err)
	}
	opts, err := clientOptions(cfg.primary, "--token-file", cfg.tokenFile, &cfg.tls)
	if err != nil {
		return failUsage(stderr, "refs: %v", err)
	}
	opts.RequestTimeout = cfg.timeout
	c, err := replicate.NewClientWithOptions(nil, opts)
	if err != nil {
		return failUsage(stderr, "refs: --primary: %v", err)
	}
	ctx, cancel := withTimeout(ctx, "refs", cfg.total)
	defer cancel()
	info, err := c.RefsInfo(ctx)
	if err != nil {
		return fail(stderr, "refs: %v", err)
	}
	if cfg.json {
		out := refsJSON{Zones: nonNil(info.Refs.Zones), Branches: nonNil(info.Refs.Branches), Tags: info.Refs.Tags,
			Capabilities: nonNil(info.Capabilities)}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tZONE\tNAME\tHASH")
	for _, b := range info.Refs.Branches {
		fmt.Fprintf(tw, "branch\t%s\t%s\t%s\n", replicate.DisplayName(b.Zone), replicate.DisplayName(b.Name), replicate.DisplayName(b.Hash))
	}
	for _, t := range info.Refs.Tags {
		fmt.Fprintf(tw, "tag\t%s\t%s\t%s\n", replicate.DisplayName(t.Zone), replicate.DisplayName(t.Name), replicate.DisplayName(t.Hash))
	}
	_ = tw.Flush()
	return exitOK
}

// nonNil turns a nil list into an empty one, so --json prints [] rather
// than null for a primary with no zones, branches or capabilities.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
