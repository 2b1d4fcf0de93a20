package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/server"
)

func init() {
	register("serve", "serve a repository to secondaries (read-only, sees new commits within a second)", runServe)
}

// serveConfig is what the serve flags say.
type serveConfig struct {
	repo, listen        string
	tokenFile           string
	tls                 serverTLSFlags
	v0Only              bool
	interval            time.Duration
	shutdownGracePeriod time.Duration
	limits              serverLimitFlags
}

func parseServeFlags(args []string, stderr io.Writer) (*serveConfig, error) {
	fs := newFlagSet("serve", stderr)
	c := &serveConfig{}
	fs.StringVar(&c.repo, "repo", "", "repository directory to serve (required)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9354", "address to listen on; port 0 picks a free port (the address is printed)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding a bearer token that clients must send")
	c.tls.register(fs)
	fs.BoolVar(&c.v0Only, "v0-only", false, "behave as a plain zonegit v0 daemon (no extensions)")
	fs.DurationVar(&c.interval, "poll", time.Second, "how often to look for new commits")
	fs.DurationVar(&c.shutdownGracePeriod, "grace", 10*time.Second, "how long in-flight requests may finish on shutdown")
	c.limits.register(fs)
	if err := parseArgs(fs, args, "repo"); err != nil {
		return nil, err
	}
	if err := c.limits.check(); err != nil {
		return nil, err
	}
	if err := c.tls.check(); err != nil {
		return nil, err
	}
	if c.interval <= 0 {
		return nil, errors.New("--poll must be positive")
	}
	return c, nil
}

// serverTLSFlags are the TLS flags of the commands that serve (serve,
// secondary): HTTPS, and mTLS with a client CA.
type serverTLSFlags struct {
	cert, key, clientCA string
}

func (f *serverTLSFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS")
	fs.StringVar(&f.key, "tls-key", "", "TLS private key file (PEM), with --tls-cert")
	fs.StringVar(&f.clientCA, "tls-client-ca", "", "CA bundle file (PEM); require client certificates signed by it (mTLS), with --tls-cert")
}

func (f *serverTLSFlags) check() error {
	switch {
	case (f.cert == "") != (f.key == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case f.clientCA != "" && f.cert == "":
		// Client certificates only exist inside a TLS handshake; refusing
		// here beats silently serving plain HTTP to everyone.
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	}
	return nil
}

// load returns the server's TLS configuration, nil for plain HTTP.
func (f *serverTLSFlags) load() (*tls.Config, error) {
	if f.cert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.clientCA != "" {
		pool, err := loadCertPool(f.clientCA)
		if err != nil {
			return nil, err
		}
		// Verified in the handshake, before any request is read: a
		// client without a certificate from this bundle never reaches
		// the handler (the bearer token, if any, is checked on top).
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		return parseFailed(stderr, "serve", err)
	}
	if err := serve(ctx, cfg, stderr); err != nil {
		return fail(stderr, "serve: %v", err)
	}
	return exitOK
}

// serve runs one server until ctx ends: snapshots, server, listener,
// shutdown. Longer than 80 lines on purpose: setup and teardown read in the
// order they happen, and each deferred close sits beside what it closes.
func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	token, err := tokenFromFile("--token-file", cfg.tokenFile)
	if err != nil {
		return err
	}
	tlsConfig, err := cfg.tls.load()
	if err != nil {
		return err
	}

	// Never the directory itself: each handle is a private copy taken
	// while no writer has the directory (see server.Snapshotter), so
	// writers (import, pull, the zonegit tools) keep working beside us and
	// nothing we do can delete their tables or fault on their files.
	snaps, err := server.NewSnapshotter(cfg.repo, server.SnapshotterOptions{Interval: cfg.interval, Logger: stderrLogger{logf}})
	if err != nil {
		return err
	}
	defer snaps.Close()
	if _, release, err := snaps.Acquire(); err != nil {
		logf("repository %s is not readable yet (%v); answering 503 until it is", cfg.repo, err)
	} else {
		release()
	}

	stats := &server.ServerStats{}
	srv := &server.Server{Snapshots: snaps, V0Only: cfg.v0Only, Token: token, Logger: stderrLogger{logf}, Stats: stats}
	cfg.limits.apply(srv)
	softMemoryLimit(serveMemoryLimit)
	err = listenAndServe(ctx, httpServing{listen: cfg.listen, handler: srv.Handler(), tls: tlsConfig, grace: cfg.shutdownGracePeriod,
		what: cfg.repo, clientCA: cfg.tls.clientCA}, stderr, func() {
		if cfg.v0Only {
			logf("extensions off: plain v0 protocol")
		}
	})
	if err != nil {
		return err
	}
	logf("served %d requests (%d client errors, %d server errors, %d refused as busy): %d objects, %d payload bytes",
		stats.Requests.Load(), stats.ClientErrors.Load(), stats.ServerErrors.Load(), stats.Busy.Load(),
		stats.ObjectsServed.Load(), stats.BytesServed.Load())
	return nil
}

// httpServing is what listenAndServe serves.
type httpServing struct {
	listen   string
	handler  http.Handler
	tls      *tls.Config // nil: plain HTTP
	grace    time.Duration
	what     string // named in the "serving" line
	clientCA string // the mTLS bundle, named in the log
}

// listenAndServe serves h until ctx ends, then shuts down gracefully:
// requests in flight get the grace period. It prints "serving <what> on
// <url>" (scripts and tests read it to learn the port of --listen :0),
// then calls started.
func listenAndServe(ctx context.Context, h httpServing, stderr io.Writer, started func()) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	hs := server.NewHTTPServer(h.listen, h.handler)
	hs.TLSConfig = h.tls
	// net/http reports refused handshakes (a client without an accepted
	// certificate, say) on its ErrorLog; keep them with the command's
	// other messages instead of the process-wide log.
	hs.ErrorLog = log.New(stderr, "", 0)

	ln, err := net.Listen("tcp", h.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if h.tls != nil {
		scheme = "https"
	}
	logf("serving %s on %s://%s", h.what, scheme, ln.Addr())
	if h.clientCA != "" {
		logf("client certificates required (CA bundle %s)", h.clientCA)
	}
	if started != nil {
		started()
	}

	errc := make(chan error, 1)
	go func() {
		if h.tls != nil {
			errc <- hs.ServeTLS(ln, "", "") // certificates come from hs.TLSConfig
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), h.grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: requests still running after --grace %s were cut off", h.grace)
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// loadCertPool reads a PEM bundle of CA certificates. Every CERTIFICATE
// block must parse, and there must be at least one: x509's
// AppendCertsFromPEM skips bad blocks silently, which would turn a typo
// into "no client is ever accepted" with no hint why.
func loadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client CA file %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("client CA file %s: no PEM certificate found", path)
	}
	return pool, nil
}

// stderrLogger prints server errors and warnings; debug lines (every
// refused request) are left out to keep the log readable.
type stderrLogger struct{ logf func(string, ...any) }

func (l stderrLogger) Error(msg string, kv ...interface{}) { l.logf("error: %s%s", msg, kvString(kv)) }
func (l stderrLogger) Warn(msg string, kv ...interface{})  { l.logf("warning: %s%s", msg, kvString(kv)) }
func (l stderrLogger) Info(msg string, kv ...interface{})  { l.logf("%s%s", msg, kvString(kv)) }
func (l stderrLogger) Debug(string, ...interface{})        {}

func kvString(kv []interface{}) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	return b.String()
}
