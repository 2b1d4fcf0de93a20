package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

func init() {
	register("secondary", "run a secondary daemon: own a replica, follow a primary, take orders over a control API", runSecondary)
}

// secondaryConfig is what the secondary flags say.
type secondaryConfig struct {
	repo, listen, primary string
	state                 string
	controlTokenFile      string
	primaryTokenFile      string
	primaryTLS            clientTLSFlags
	tokenFile             string
	tls                   serverTLSFlags
	follow                time.Duration
	requestTimeout        time.Duration
	grace                 time.Duration
	limits                serverLimitFlags
}

func parseSecondaryFlags(args []string, stderr io.Writer) (*secondaryConfig, error) {
	fs := newFlagSet("secondary", stderr)
	c := &secondaryConfig{primaryTLS: clientTLSFlags{prefix: "primary-"}}
	fs.StringVar(&c.repo, "repo", "", "replica directory the daemon owns, created if absent (required)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9355", "address to listen on; port 0 picks a free port (the address is printed)")
	fs.StringVar(&c.primary, "primary", "", "primary URL, http(s)://host:port (required)")
	fs.StringVar(&c.controlTokenFile, "control-token-file", "", "file holding the bearer token of the control API (required)")
	fs.StringVar(&c.state, "state", "", "desired-state file (default: <repo>.secondary.json beside the directory)")
	fs.StringVar(&c.primaryTokenFile, "primary-token-file", "", "file holding the primary's bearer token")
	c.primaryTLS.register(fs)
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding a bearer token that readers of the replica (/v0) must send")
	c.tls.register(fs)
	fs.DurationVar(&c.follow, "follow", 0, "pull by the desired state every DURATION when it says follow (0: only when told)")
	fs.DurationVar(&c.requestTimeout, "request-timeout", 30*time.Second, "per-request timeout towards the primary (response headers, longest silence)")
	fs.DurationVar(&c.grace, "grace", 10*time.Second, "how long in-flight requests may finish on shutdown")
	c.limits.register(fs)
	if err := parseArgs(fs, args, "repo", "primary", "control-token-file"); err != nil {
		return nil, err
	}
	if err := checkPrimary(c.primary); err != nil {
		return nil, err
	}
	if err := c.primaryTLS.check(); err != nil {
		return nil, err
	}
	if err := c.tls.check(); err != nil {
		return nil, err
	}
	if err := c.limits.check(); err != nil {
		return nil, err
	}
	switch {
	case c.follow < 0:
		return nil, fmt.Errorf("--follow %s: must not be negative", c.follow)
	case c.requestTimeout <= 0:
		return nil, fmt.Errorf("--request-timeout %s: must be positive", c.requestTimeout)
	case c.grace < 0:
		return nil, fmt.Errorf("--grace %s: must not be negative", c.grace)
	}
	return c, nil
}

func runSecondary(ctx context.Context, args []string, _, stderr io.Writer) int {
	cfg, err := parseSecondaryFlags(args, stderr)
	if err != nil {
		return parseFailed(stderr, "secondary", err)
	}
	// Everything read from files is the command line's fault when bad.
	control, err := tokenFromFile("--control-token-file", cfg.controlTokenFile)
	if err != nil {
		return failUsage(stderr, "secondary: %v", err)
	}
	read, err := tokenFromFile("--token-file", cfg.tokenFile)
	if err != nil {
		return failUsage(stderr, "secondary: %v", err)
	}
	if read != "" && read == control {
		// One token for both would let every reader of the replica
		// change what it replicates.
		return failUsage(stderr, "secondary: --token-file and --control-token-file hold the same token; the control token must be separate")
	}
	opts, err := clientOptions(cfg.primary, "--primary-token-file", cfg.primaryTokenFile, &cfg.primaryTLS)
	if err != nil {
		return failUsage(stderr, "secondary: %v", err)
	}
	opts.RequestTimeout = cfg.requestTimeout
	tlsConfig, err := cfg.tls.load()
	if err != nil {
		return failUsage(stderr, "secondary: %v", err)
	}
	if err := runSecondaryDaemon(ctx, cfg, opts, control, read, tlsConfig, stderr); err != nil {
		return fail(stderr, "secondary: %v", err)
	}
	return exitOK
}

func runSecondaryDaemon(ctx context.Context, cfg *secondaryConfig, opts replicate.ClientOptions, control, read string,
	tlsConfig *tls.Config, stderr io.Writer) (err error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s\n", safeLine(fmt.Sprintf(format, args...)))
	}
	softMemoryLimit(serveMemoryLimit)
	d, err := secondary.New(secondary.Config{
		Dir: cfg.repo, StatePath: cfg.state, Primary: opts, Follow: cfg.follow,
		ControlToken: control, ReadToken: read, Logf: logf,
		Server: func(s *replicate.Server) {
			cfg.limits.apply(s)
			s.Logger = stderrLogger{logf}
		},
	})
	if err != nil {
		return err
	}
	// Close after the HTTP server has shut down: it aborts a follow pull
	// in flight (refs only ever name complete closures) and closes the
	// replica, which must reach the disk.
	defer func() {
		if cerr := d.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the replica %s: %w", cfg.repo, cerr)
		}
	}()
	return listenAndServe(ctx, httpServing{listen: cfg.listen, handler: d.Handler(), tls: tlsConfig, grace: cfg.grace,
		what: "secondary " + cfg.repo, clientCA: cfg.tls.clientCA}, stderr, func() {
		follow := "off (pulls only when told)"
		if cfg.follow > 0 {
			follow = "every " + cfg.follow.String()
		}
		logf("primary %s; follow %s; control API under %s", cfg.primary, follow, secondary.ControlPath)
		if ds := d.Desired(); ds != nil {
			logf("desired state restored: zones %v, branches %v, %d pins, prune %v, follow %v",
				ds.Zones, ds.Branches, len(ds.Pins), ds.Prune, ds.Follow)
		}
	})
}
