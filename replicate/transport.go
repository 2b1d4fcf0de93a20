package replicate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
)

// Defaults for ClientOptions zero values.
const (
	defaultInterval       = 5 * time.Second
	defaultRequestTimeout = 30 * time.Second
	defaultConcurrency    = 8
	defaultRetryAttempts  = 4
	defaultRetryMinDelay  = 200 * time.Millisecond
	defaultRetryMaxDelay  = 5 * time.Second
	defaultUserAgent      = "terraform-provider-zonegit/dev"
	// A response slower than 1 KiB/s over 30 s of waiting is cut off: a
	// healthy primary on the slowest link we support sends far more, and
	// a trickling one is then cut off within a minute.
	defaultStallWindow  = 30 * time.Second
	defaultStallMinRate = 1 << 10
)

// Size bounds for anything read from the network (package wire bounds
// the refs and walk answers it decodes).
const (
	maxObjectBytes = 64 << 20
	maxErrorBody   = 512 // bytes of an error body quoted in an error message
)

// maxWalkHashes bounds the hashes a client holds from walk answers in one
// pull: the most our server lists in one answer (its response cap), ~320
// MiB of hashes. An answer that goes on beyond it is refused. A variable
// only so a test can lower it.
var maxWalkHashes = wire.DefaultMaxWalkMissing

// StatusError is a non-2xx answer from the primary. Callers can match it
// with errors.As to act on the status code.
type StatusError struct {
	Method, URL string
	StatusCode  int
	Status      string // e.g. "401 Unauthorized"
	Body        string // clipped, printable snippet of the body
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return msg + ": check the token"
	case http.StatusForbidden:
		return msg + ": the token is not allowed to read this primary"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// errStalled is the cause recorded when a request's timeout fires or its
// response is too slow, so the error says "timed out" rather than the
// transport's "context canceled".
var errStalled = errors.New("timed out")

// transport is the client's HTTP machinery: a retrying client over a
// cloned default transport, plus the headers every request carries.
type transport struct {
	base    string // primary URL without trailing slash (set by with)
	rc      *retryablehttp.Client
	hc      *http.Client // the cloned, counting transport (Client.HTTP)
	headers http.Header
	// secret names the headers only the primary's origin may see: the
	// Authorization of the token and every configured extra header (they
	// may carry API keys; we cannot tell which do).
	secret []string
	stall  stallRule

	minDelay, maxDelay time.Duration
	attempts           int
	logger             wire.Logger
}

// stallRule cuts off a response body that is too slow: one that delivers
// fewer than minRate bytes per second over window of waiting (see
// watchedBody), or nothing at all for idle.
type stallRule struct {
	idle    time.Duration
	window  time.Duration
	minRate int64 // bytes per second; <= 0 disables the rate check
}

// requestCounter counts every attempt (retries included) of the requests
// made under one context; see withCounter.
type counterKey struct{}

func withCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, counterKey{}, n)
}

// countingRT counts attempts and bounds each one: the response headers
// must come within the request timeout, and the body must keep coming at
// the stall rule's rate (see watchedBody), so a long streamed response that
// keeps making progress is not cut off, but a stalled or trickling one is.
type countingRT struct {
	next  http.RoundTripper
	stall stallRule
}

func (t *countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if n, ok := req.Context().Value(counterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.stall.idle, func() {
		cancel(fmt.Errorf("no response from %s within %s: %w", origin(req.URL), t.stall.idle, errStalled))
	})
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	resp.Body = newWatchedBody(ctx, resp.Body, cancel, origin(req.URL), t.stall)
	return resp, nil
}

// watchedBody enforces the stall rule on a response body. Only time spent
// waiting inside Read counts: a caller busy storing what it read (a slow
// disk flush) is not the primary's fault, and while it does not read, TCP
// holds the primary back anyway. The body fails when
//
//   - a Read has waited idle without a byte (the primary went silent), or
//   - a window's worth of waiting brought fewer than window*minRate bytes
//     (the primary trickles: resetting the idle timer on every byte would
//     let one byte a second keep a pull alive for ever).
//
// A timer fires while a Read blocks, so a primary that sends nothing more
// is cut off on time, not at its next byte.
type watchedBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	origin string
	rule   stallRule
	timer  *time.Timer

	mu        sync.Mutex
	waited    time.Duration // total time spent inside Read, the body's clock
	reading   bool
	readStart time.Time
	lastByte  time.Duration // waited when the last byte arrived
	winStart  time.Duration // waited when the current window began
	winBytes  int64         // bytes received in the current window
}

func newWatchedBody(ctx context.Context, rc io.ReadCloser, cancel context.CancelCauseFunc, origin string, rule stallRule) *watchedBody {
	b := &watchedBody{rc: rc, ctx: ctx, cancel: cancel, origin: origin, rule: rule}
	b.timer = time.AfterFunc(time.Hour, b.check)
	b.timer.Stop()
	return b
}

// nowLocked is the body's clock: waiting time so far, including the Read
// in progress.
func (b *watchedBody) nowLocked() time.Duration {
	if b.reading {
		return b.waited + time.Since(b.readStart)
	}
	return b.waited
}

// evalLocked applies the rule at the body's current clock. It returns the
// error that ends the response, or how much more waiting may pass before
// the rule must be applied again.
func (b *watchedBody) evalLocked() (time.Duration, error) {
	now := b.nowLocked()
	if silent := now - b.lastByte; silent >= b.rule.idle {
		return 0, fmt.Errorf("response from %s stalled: no data for %s: %w", b.origin, b.rule.idle, errStalled)
	}
	next := b.rule.idle - (now - b.lastByte)
	if b.rule.minRate > 0 && b.rule.window > 0 {
		if now-b.winStart >= b.rule.window {
			want := int64(b.rule.window.Seconds() * float64(b.rule.minRate))
			if b.winBytes < want {
				return 0, fmt.Errorf("response from %s stalled: %d bytes in %s, below the minimum of %d bytes/s: %w",
					b.origin, b.winBytes, b.rule.window, b.rule.minRate, errStalled)
			}
			b.winStart, b.winBytes = now, 0
		}
		next = min(next, b.rule.window-(now-b.winStart))
	}
	return next, nil
}

// check runs from the timer while a Read blocks.
func (b *watchedBody) check() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.reading {
		return
	}
	next, err := b.evalLocked()
	if err != nil {
		b.cancel(err)
		return
	}
	b.timer.Reset(next)
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.reading, b.readStart = true, time.Now()
	next, err := b.evalLocked()
	if err != nil {
		b.reading = false
		b.mu.Unlock()
		b.cancel(err)
		return 0, err
	}
	b.timer.Reset(next)
	b.mu.Unlock()

	n, err := b.rc.Read(p)

	b.mu.Lock()
	b.timer.Stop()
	b.waited += time.Since(b.readStart)
	b.reading = false
	if n > 0 {
		b.lastByte = b.waited
		b.winBytes += int64(n)
	}
	b.mu.Unlock()
	if err != nil && b.ctx.Err() != nil {
		// Say why the request was cut off (a stall, or the caller's
		// deadline) rather than "context canceled". Even an io.EOF: a
		// connection closed by the cancellation can read as a clean end,
		// which would pass a cut-off body for a complete one.
		if cause := context.Cause(b.ctx); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.mu.Lock()
	b.timer.Stop()
	b.reading = false
	b.mu.Unlock()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// origin is a URL's scheme://host:port, the unit credentials are bound
// to. The port is explicit, so http://h and http://h:80 compare equal.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// maxRedirects is net/http's default, which a CheckRedirect replaces.
const maxRedirects = 10

// redirectPolicy follows redirects, but sends credentials only to the
// origin (scheme, host and port) of the first request, the configured
// primary. net/http alone would keep Authorization on a redirect to
// another port of the same host, or to a subdomain, and would copy every
// other header (the configured extras, which may hold API keys) anywhere.
// Stripping rather than refusing is what curl and git do: a mirror that
// needs no credentials still works, and one that needs them answers 401.
// next, when set, is the caller's own policy, applied after ours.
func redirectPolicy(secret []string, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			// The wording go-retryablehttp recognises as not worth a retry.
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if origin(req.URL) != origin(via[0].URL) {
			for _, k := range secret {
				req.Header.Del(k)
			}
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

// ValidatePrimaryURL applies the rules every client applies to a primary
// URL (see parsePrimaryURL), so a command or a provider can reject a bad
// one while reading its configuration, before any request.
func ValidatePrimaryURL(s string) error {
	_, err := parsePrimaryURL(s)
	return err
}

// parsePrimaryURL accepts only absolute http(s) URLs with a host, an
// optional port in 1-65535, no user info (credentials go in the token,
// never in a URL that error messages quote) and no query or fragment, and
// returns them without a trailing slash, so paths can be appended. A port
// out of range is caught here rather than as an "unreachable" primary
// retried several times.
func parsePrimaryURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("primary URL is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the whole URL itself; keep only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("primary URL %q: %w", clipStr(s), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("primary URL %q: scheme must be http or https", clipStr(s))
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("primary URL %q: no host", clipStr(s))
	}
	if u.User != nil {
		return "", fmt.Errorf("primary URL %q: must not contain user info (use a token)", clipStr(u.Redacted()))
	}
	if strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("primary URL %q: empty port", clipStr(s))
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("primary URL %q: port %s out of range 1-65535", clipStr(s), p)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("primary URL %q: must not have a query or fragment", clipStr(s))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func tlsConfig(o *ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACertPEM != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(o.CACertPEM)) {
			return nil, errors.New("CA certificate PEM: no certificate could be parsed")
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.ClientCertPEM != "" && o.ClientKeyPEM != "":
		cert, err := tls.X509KeyPair([]byte(o.ClientCertPEM), []byte(o.ClientKeyPEM))
		if err != nil {
			return nil, fmt.Errorf("client certificate/key PEM: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.ClientCertPEM != "":
		return nil, errors.New("client certificate PEM given without a client key PEM")
	case o.ClientKeyPEM != "":
		return nil, errors.New("client key PEM given without a client certificate PEM")
	}
	if o.Insecure {
		cfg.InsecureSkipVerify = true //nolint:gosec // only when the user asks for it
	}
	return cfg, nil
}

func newTransport(o *ClientOptions) (*transport, error) {
	tc, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	// Clone: the shared default transport belongs to the whole process.
	dt, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	tr := dt.Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = tc
	// Keep one idle keep-alive connection per concurrent fetcher, so v0
	// object GETs reuse connections instead of re-dialing.
	if tr.MaxIdleConnsPerHost < o.Concurrency+2 {
		tr.MaxIdleConnsPerHost = o.Concurrency + 2
	}
	if tr.MaxIdleConns < o.Concurrency+2 {
		tr.MaxIdleConns = o.Concurrency + 2
	}
	stall := stallRule{idle: o.RequestTimeout, window: o.StallWindow, minRate: o.StallMinRate}
	hc := &http.Client{Transport: &countingRT{next: tr, stall: stall}}
	h := http.Header{}
	var secret []string
	for k, v := range o.Headers {
		h.Set(k, v)
		secret = append(secret, http.CanonicalHeaderKey(k))
	}
	h.Set("User-Agent", o.UserAgent)
	if o.Token != "" {
		h.Set("Authorization", "Bearer "+o.Token)
	}
	// Always, even without a token: net/http would also copy
	// Authorization set by a caller's own RoundTripper or headers.
	secret = append(secret, "Authorization", "Cookie")
	return &transport{hc: hc, headers: h, secret: secret, stall: stall,
		minDelay: o.RetryMinDelay, maxDelay: o.RetryMaxDelay, attempts: o.RetryAttempts, logger: o.Logger}, nil
}

// NewHTTPClient returns the HTTP client a Client reaches its primary with
// (o's TLS material and Insecure, the proxy from the environment, the
// request timeout and stall rule, and a redirect policy that sends
// credentials only to the first request's origin), for other zonegit HTTP
// APIs that must be reached the same way: the secondary daemon's control
// API. Token, Headers and the retry settings are not applied: the caller
// sets its own headers and retries.
func NewHTTPClient(o ClientOptions) (*http.Client, error) {
	o.setDefaults()
	t, err := newTransport(&o)
	if err != nil {
		return nil, err
	}
	return t.guard(t.hc), nil
}

// guard returns hc with this transport's bounds: a caller that replaced
// Client.HTTP (its own TLS setup, a test transport, another Client's HTTP)
// keeps this client's per-request timeout and stall rule (RequestTimeout,
// StallWindow, StallMinRate), since they and the redirect policy protect
// against the primary, whoever built the http.Client. hc itself is not
// modified.
func (t *transport) guard(hc *http.Client) *http.Client {
	g := *hc
	next := hc.Transport
	if crt, ok := next.(*countingRT); ok {
		if crt.stall == t.stall {
			next = nil // already this client's rule: keep hc's transport as is
		} else {
			next = crt.next // another client's rule: ours replaces it
		}
	} else if next == nil {
		next = http.DefaultTransport
	}
	if next != nil {
		g.Transport = &countingRT{next: next, stall: t.stall}
	}
	g.CheckRedirect = redirectPolicy(t.secret, hc.CheckRedirect)
	return &g
}

// with returns a transport for one primary URL over hc (guarded).
func (t *transport) with(base string, hc *http.Client) *transport {
	rc := &retryablehttp.Client{
		HTTPClient:   t.guard(hc),
		RetryWaitMin: t.minDelay,
		RetryWaitMax: t.maxDelay,
		// retryPolicy stops first: it counts failures and busy answers
		// apart (see retryBudget).
		RetryMax:   t.attempts * (1 + busyRetriesPerAttempt),
		CheckRetry: t.retryPolicy,
		Backoff:    backoff,
		// Hand the last response back so the error can quote its status
		// and body instead of "giving up after N attempts".
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	if t.logger != nil {
		rc.Logger = t.logger
	}
	c := *t
	c.base, c.rc = base, rc
	return &c
}

// busyRetriesPerAttempt: a primary that answers 429 or 503 with a
// Retry-After is busy, not broken (our server sheds load that way, see
// Server.MaxConcurrent), so a request waits out up to this many such
// answers per configured retry before giving up: with the defaults 16
// waits of at most RetryMaxDelay (5 s), about 80 s, on top of the 4
// retries of failures. The caller's context still bounds it all.
const busyRetriesPerAttempt = 4

// retryBudget is what one request (all its attempts) has used of its
// retries; do puts one in the request's context for retryPolicy.
type retryBudget struct{ failed, busy int }

type retryBudgetKey struct{}

// retryPolicy retries connection errors, 429 and 5xx (retryablehttp's
// default), never other 4xx, and stops as soon as the caller's context
// ends. Busy answers (429/503 with a Retry-After) draw on their own, larger
// budget, so a loaded primary delays a pull rather than failing it.
func (t *transport) retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	retry, perr := retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	if !retry || perr != nil {
		return retry, perr
	}
	b, ok := ctx.Value(retryBudgetKey{}).(*retryBudget)
	if !ok {
		return true, nil // RetryMax bounds it
	}
	if isBusy(resp) {
		b.busy++
		return b.busy <= t.attempts*busyRetriesPerAttempt, nil
	}
	b.failed++
	return b.failed <= t.attempts, nil
}

// isBusy reports a 429 or 503 answer that says when to come back.
func isBusy(resp *http.Response) bool {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return false
	}
	_, ok := parseRetryAfter(resp.Header.Get("Retry-After"))
	return ok
}

// backoff is exponential with jitter between min and max. Retry-After is
// honoured on 429/503 but capped at max: a primary asking for an hour must
// not hang a Terraform apply for an hour.
func backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if isBusy(resp) {
		d, _ := parseRetryAfter(resp.Header.Get("Retry-After"))
		return min(max(d, lo), hi)
	}
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	if d > hi {
		d = hi
	}
	// Jitter in [d/2, d] spreads secondaries that failed together.
	if half := int64(d / 2); half > 0 {
		d = time.Duration(half + rand.Int64N(half+1))
	}
	return d
}

func parseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > 1<<30 {
			s = 1 << 30
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// do sends one request (retried) and returns a 2xx response whose body the
// caller must close; anything else becomes a descriptive error that names
// the URL.
func (t *transport) do(ctx context.Context, method, path string, body []byte, contentType string) (*http.Response, error) {
	u := t.base + path
	var rb interface{}
	if body != nil {
		rb = body
	}
	req, err := retryablehttp.NewRequestWithContext(context.WithValue(ctx, retryBudgetKey{}, &retryBudget{}), method, u, rb)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	for k, v := range t.headers {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := t.rc.Do(req)
	if err != nil {
		if resp != nil {
			drain(resp)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, context.Cause(ctx))
		}
		return nil, fmt.Errorf("%s %s: unreachable: %w", method, u, unwrapURLError(err))
	}
	if resp.StatusCode/100 != 2 {
		defer drain(resp)
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, &StatusError{Method: method, URL: u, StatusCode: resp.StatusCode,
			Status: statusText(resp), Body: wire.Printable(snippet)}
	}
	return resp, nil
}

func statusText(resp *http.Response) string {
	if resp.Status != "" {
		return resp.Status
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// unwrapURLError drops *url.Error's "Get \"url\":" prefix, since our own
// message already names the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// drain reads a little of what is left of resp's body so the connection
// can be reused, then closes the body. It takes the response rather than
// its body so that bodyclose can see that `defer drain(resp)` closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func clipStr(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
