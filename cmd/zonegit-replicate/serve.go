package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
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
	tlsCert, tlsKey     string
	tlsClientCA         string
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
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key file (PEM), with --tls-cert")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "CA bundle file (PEM); require client certificates signed by it (mTLS), with --tls-cert")
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
	switch {
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together")
	case c.tlsClientCA != "" && c.tlsCert == "":
		// Client certificates only exist inside a TLS handshake; refusing
		// here beats silently serving plain HTTP to everyone.
		return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case c.interval <= 0:
		return nil, errors.New("--poll must be positive")
	}
	return c, nil
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

	var token string
	if cfg.tokenFile != "" {
		b, err := os.ReadFile(cfg.tokenFile)
		if err != nil {
			return fmt.Errorf("read token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return fmt.Errorf("token file %s is empty", cfg.tokenFile)
		}
	}
	var tlsConfig *tls.Config
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.tlsClientCA != "" {
			pool, err := loadCertPool(cfg.tlsClientCA)
			if err != nil {
				return err
			}
			// Verified in the handshake, before any request is read: a
			// client without a certificate from this bundle never reaches
			// the handler (the bearer token, if any, is checked on top).
			tlsConfig.ClientCAs = pool
			tlsConfig.ClientAuth = tls.RequireAndVerifyClientCert
		}
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
	hs := server.NewHTTPServer(cfg.listen, srv.Handler())
	hs.TLSConfig = tlsConfig
	// net/http reports refused handshakes (a client without an accepted
	// certificate, say) on its ErrorLog; keep them with the command's
	// other messages instead of the process-wide log.
	hs.ErrorLog = log.New(stderr, "", 0)

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	// Scripts and tests read this line to learn the port of --listen :0.
	logf("serving %s on %s://%s", cfg.repo, scheme, ln.Addr())
	if cfg.tlsClientCA != "" {
		logf("client certificates required (CA bundle %s)", cfg.tlsClientCA)
	}
	if cfg.v0Only {
		logf("extensions off: plain v0 protocol")
	}

	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
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
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownGracePeriod)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logf("served %d requests (%d client errors, %d server errors, %d refused as busy): %d objects, %d payload bytes",
		stats.Requests.Load(), stats.ClientErrors.Load(), stats.ServerErrors.Load(), stats.Busy.Load(),
		stats.ObjectsServed.Load(), stats.BytesServed.Load())
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
