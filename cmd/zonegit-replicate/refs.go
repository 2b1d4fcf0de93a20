package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

func init() {
	register("refs", "list a primary's zones, branches and tags", runRefs)
}

type refsConfig struct {
	primary, tokenFile string
	json               bool
	timeout            time.Duration
}

func parseRefsFlags(args []string, stderr io.Writer) (*refsConfig, error) {
	fs := flag.NewFlagSet("refs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &refsConfig{}
	fs.StringVar(&c.primary, "primary", "", "primary URL, http(s)://host:port (required)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the primary's bearer token")
	fs.BoolVar(&c.json, "json", false, "print JSON (the /v0/refs shape plus capabilities)")
	fs.DurationVar(&c.timeout, "request-timeout", 30*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.primary == "":
		return nil, errors.New("--primary is required")
	case c.timeout <= 0:
		return nil, fmt.Errorf("--request-timeout %s: must be positive", c.timeout)
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
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "zonegit-replicate refs: %v\n", err)
		return exitUsage
	}
	token, err := clientToken(cfg.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "zonegit-replicate refs: %v\n", err)
		return exitUsage
	}
	c, err := replicate.NewClientWithOptions(nil, replicate.ClientOptions{PrimaryURL: cfg.primary, Token: token,
		RequestTimeout: cfg.timeout, UserAgent: "zonegit-replicate/" + version})
	if err != nil {
		fmt.Fprintf(stderr, "zonegit-replicate refs: --primary: %v\n", err)
		return exitUsage
	}
	info, err := c.RefsInfo(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "zonegit-replicate refs: %v\n", err)
		return exitFailed
	}
	if cfg.json {
		out := refsJSON{Zones: info.Refs.Zones, Branches: info.Refs.Branches, Tags: info.Refs.Tags, Capabilities: info.Capabilities}
		if out.Zones == nil {
			out.Zones = []string{}
		}
		if out.Branches == nil {
			out.Branches = []replicate.Branch{}
		}
		if out.Capabilities == nil {
			out.Capabilities = []string{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tZONE\tNAME\tHASH")
	for _, b := range info.Refs.Branches {
		fmt.Fprintf(tw, "branch\t%s\t%s\t%s\n", safeText(b.Zone), safeText(b.Name), safeText(b.Hash))
	}
	for _, t := range info.Refs.Tags {
		fmt.Fprintf(tw, "tag\t%s\t%s\t%s\n", safeText(t.Zone), safeText(t.Name), safeText(t.Hash))
	}
	_ = tw.Flush()
	return exitOK
}

// safeText quotes names a primary sent with control bytes or spaces, so a
// hostile primary cannot drive the terminal or break the table.
func safeText(s string) string {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}
