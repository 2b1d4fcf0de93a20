package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/server"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
)

// newFlagSet returns the flag set of subcommand name. It returns errors
// rather than exiting, so the subcommand picks the exit code, and writes
// -h and flag errors to stderr with the rest of the command's messages.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs parses args into fs, then refuses positional arguments (no
// subcommand takes any) and names the first of the required flags left
// empty. Its error goes to parseFailed.
func parseArgs(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	return nil
}

// parseFailed reports a failed parse of subcommand cmd's flags and returns
// its exit code: exitOK for -h, whose usage the flag set has printed, and
// exitUsage for anything else.
func parseFailed(stderr io.Writer, cmd string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return failUsage(stderr, "%s: %v", cmd, err)
}

// fail prints "zonegit-replicate <message>" on stderr and returns
// exitFailed; the message starts with the subcommand's name. Messages can
// quote what a primary sent, so they are printed through safeLine.
func fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "zonegit-replicate %s\n", safeLine(fmt.Sprintf(format, args...)))
	return exitFailed
}

// failUsage is fail for a mistake in the command line: exit 2, not 1.
func failUsage(stderr io.Writer, format string, args ...any) int {
	fail(stderr, format, args...)
	return exitUsage
}

// tokenFromFile reads a bearer token from the file a flag names ("" for
// none), trimming the trailing newline editors add. An empty file is an
// error: a token of "" would turn authentication off unnoticed.
func tokenFromFile(name, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s %s is empty", name, path)
	}
	return tok, nil
}

// clientTLSFlags are the TLS flags of the commands that talk to a primary
// (pull, refs, and secondary with the prefix "primary-"), registered and
// loaded in one place so all accept the same spelling and report the same
// errors.
type clientTLSFlags struct {
	prefix                        string // "" or "primary-": before every flag name
	caCert, clientCert, clientKey string
	insecure                      bool
}

// flag is the spelling of one of the flags in messages: "--ca-cert".
func (f *clientTLSFlags) flag(name string) string { return "--" + f.prefix + name }

func (f *clientTLSFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.caCert, f.prefix+"ca-cert", "", "PEM bundle of CAs trusted for the primary's certificate, besides the system's")
	fs.StringVar(&f.clientCert, f.prefix+"client-cert", "", "PEM client certificate presented to the primary (with "+f.flag("client-key")+")")
	fs.StringVar(&f.clientKey, f.prefix+"client-key", "", "PEM key of "+f.flag("client-cert"))
	fs.BoolVar(&f.insecure, f.prefix+"insecure", false, "do not verify the primary's certificate (testing only)")
}

// check refuses combinations that cannot mean what the user wants; it runs
// with the other flag checks, so its error is a usage error.
func (f *clientTLSFlags) check() error {
	switch {
	case f.clientCert != "" && f.clientKey == "":
		return fmt.Errorf("%s needs %s", f.flag("client-cert"), f.flag("client-key"))
	case f.clientKey != "" && f.clientCert == "":
		return fmt.Errorf("%s needs %s", f.flag("client-key"), f.flag("client-cert"))
	case f.insecure && f.caCert != "":
		// Skipping verification would silently ignore the CA the user
		// named, so a typo in the setup would go unnoticed.
		return fmt.Errorf("%s conflicts with %s", f.flag("insecure"), f.flag("ca-cert"))
	}
	return nil
}

// load reads the files into o. The contents are parsed here too, though
// the client parses them again, so that a bad file is reported by its
// name and flag rather than as a problem with --primary. Like an
// unreadable --token-file, every error here is the command line's fault.
func (f *clientTLSFlags) load(o *replicate.ClientOptions) error {
	o.Insecure = f.insecure
	if f.caCert != "" {
		b, err := os.ReadFile(f.caCert)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag("ca-cert"), err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("%s %s: no PEM certificate could be parsed", f.flag("ca-cert"), f.caCert)
		}
		o.CACertPEM = string(b)
	}
	if f.clientCert != "" {
		cert, err := os.ReadFile(f.clientCert)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag("client-cert"), err)
		}
		key, err := os.ReadFile(f.clientKey)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag("client-key"), err)
		}
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			return fmt.Errorf("%s %s / %s %s: %w", f.flag("client-cert"), f.clientCert, f.flag("client-key"), f.clientKey, err)
		}
		o.ClientCertPEM, o.ClientKeyPEM = string(cert), string(key)
	}
	return nil
}

// checkPrimary applies the client's URL rules (scheme, host, port range,
// no user info) while the flags are parsed, so a bad --primary is a usage
// error naming the value instead of an "unreachable" primary retried.
func checkPrimary(primary string) error {
	if err := replicate.ValidatePrimaryURL(primary); err != nil {
		return fmt.Errorf("--primary: %w", err)
	}
	return nil
}

// registerTimeout adds --timeout, the bound on a whole command's exchange
// with the primary. The per-request timeout and the client's stall rule
// cut off a silent or trickling primary; this also bounds one that keeps
// just above the minimum rate.
func registerTimeout(fs *flag.FlagSet, d *time.Duration, def time.Duration) {
	fs.DurationVar(d, "timeout", def, "give up when the whole command takes longer than this (0: no limit)")
}

func checkTimeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--timeout %s: must not be negative", d)
	}
	return nil
}

// withTimeout bounds ctx by --timeout; the error a request then fails with
// names the flag.
func withTimeout(ctx context.Context, cmd string, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%s did not finish within --timeout %s", cmd, d))
}

// safeLine escapes what is not printable in a message that may quote the
// primary (errors naming its branches, its error bodies), keeping the rest
// as it is: one message stays one line, and no byte of it reaches the
// terminal as a control sequence.
func safeLine(s string) string { return wire.SafeText(s) }

// serverLimitFlags bound what serve holds in memory at once (see
// server.Server: MaxConcurrent, MaxQueued, QueueWait).
type serverLimitFlags struct {
	concurrent, queued int
	wait               time.Duration
}

func (f *serverLimitFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.concurrent, "max-concurrent", 4, "walk, pack and batch requests served at once (the memory bound)")
	fs.IntVar(&f.queued, "max-queued", 64, "more such requests waiting for a slot; beyond, 503 with Retry-After")
	fs.DurationVar(&f.wait, "queue-wait", 10*time.Second, "longest wait in the queue before 503")
}

func (f *serverLimitFlags) check() error {
	switch {
	case f.concurrent <= 0:
		return fmt.Errorf("--max-concurrent %d: must be positive", f.concurrent)
	case f.queued < 0:
		return fmt.Errorf("--max-queued %d: must not be negative", f.queued)
	case f.wait <= 0:
		return fmt.Errorf("--queue-wait %s: must be positive", f.wait)
	}
	return nil
}

// apply sets the limits on s. --max-queued 0 means no queue at all, which
// the server spells as a negative MaxQueued.
func (f *serverLimitFlags) apply(s *server.Server) {
	s.MaxConcurrent, s.QueueWait = f.concurrent, f.wait
	s.MaxQueued = f.queued
	if f.queued == 0 {
		s.MaxQueued = -1
	}
}

// softMemoryLimit sets the Go heap's soft limit, unless GOMEMLIMIT is set
// (the operator's word wins). Without one the garbage collector lets the
// heap grow to twice what is live; with one it collects harder near the
// limit instead.
func softMemoryLimit(bytes int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bytes)
	}
}

// serveMemoryLimit is serve's soft heap limit: with the default of 4
// expensive requests at once and the 128 MiB large-object cache it leaves
// room for Badger's memory-mapped files within 512 MiB.
const serveMemoryLimit = 384 << 20
