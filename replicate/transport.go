package replicate

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"
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
)

// Size bounds for anything decoded from the network. Walk responses are
// decoded as a stream (one hash at a time), so their bound limits work, not
// memory: a full walk of a 1M-RRset zone is about 2M hashes (~140 MB).
const (
	maxRefsBytes   = 64 << 20
	maxWalkBytes   = 1 << 30
	maxObjectBytes = 64 << 20
	maxErrorBody   = 512 // bytes of an error body quoted in an error message
)

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

// errStalled is the cause recorded when a request's timeout fires, so the
// error says "timed out" rather than the transport's "context canceled".
var errStalled = errors.New("timed out")

// transport is the client's HTTP machinery: a retrying client over a
// cloned default transport, plus the headers every request carries.
type transport struct {
	base    string // primary URL without trailing slash (set by with)
	rc      *retryablehttp.Client
	hc      *http.Client // the cloned, counting transport (Client.HTTP)
	headers http.Header
	timeout time.Duration

	minDelay, maxDelay time.Duration
	attempts           int
	logger             Logger
}

// requestCounter counts every attempt (retries included) of the requests
// made under one context; see withCounter.
type counterKey struct{}

func withCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, counterKey{}, n)
}

// countingRT counts attempts and bounds each one with the request timeout:
// the timeout covers the wait for response headers and any stall while the
// body is read, so a long streamed response that keeps making progress is
// not cut off, but a stalled one is.
type countingRT struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t *countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if n, ok := req.Context().Value(counterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.timeout, func() {
		cancel(fmt.Errorf("no response within %s: %w", t.timeout, errStalled))
	})
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	timer.Stop()
	resp.Body = &idleBody{rc: resp.Body, ctx: ctx, cancel: cancel, timeout: t.timeout,
		timer: time.AfterFunc(t.timeout, func() {
			cancel(fmt.Errorf("response body stalled for %s: %w", t.timeout, errStalled))
		})}
	return resp, nil
}

// idleBody cancels the request when no body bytes arrive for timeout.
type idleBody struct {
	rc      io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration
	timer   *time.Timer
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.timeout)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		if cause := context.Cause(b.ctx); errors.Is(cause, errStalled) {
			err = cause
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// parsePrimaryURL accepts only absolute http(s) URLs and returns them
// without a trailing slash, so paths can be appended.
func parsePrimaryURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("primary URL is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("primary URL %q: %w", clipStr(s), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("primary URL %q: scheme must be http or https", clipStr(s))
	}
	if u.Host == "" {
		return "", fmt.Errorf("primary URL %q: no host", clipStr(s))
	}
	if u.RawQuery != "" || u.Fragment != "" {
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
	hc := &http.Client{Transport: &countingRT{next: tr, timeout: o.RequestTimeout}}
	h := http.Header{}
	for k, v := range o.Headers {
		h.Set(k, v)
	}
	h.Set("User-Agent", o.UserAgent)
	if o.Token != "" {
		h.Set("Authorization", "Bearer "+o.Token)
	}
	return &transport{hc: hc, headers: h, timeout: o.RequestTimeout,
		minDelay: o.RetryMinDelay, maxDelay: o.RetryMaxDelay, attempts: o.RetryAttempts, logger: o.Logger}, nil
}

// with returns a transport for one primary URL over hc.
func (t *transport) with(base string, hc *http.Client) *transport {
	rc := &retryablehttp.Client{
		HTTPClient:   hc,
		RetryWaitMin: t.minDelay,
		RetryWaitMax: t.maxDelay,
		RetryMax:     t.attempts,
		CheckRetry:   retryPolicy,
		Backoff:      backoff,
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

// retryPolicy retries connection errors, 429 and 5xx (retryablehttp's
// default), never other 4xx, and stops as soon as the caller's context ends.
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff is exponential with jitter between min and max. Retry-After is
// honoured on 429/503 but capped at max: a primary asking for an hour must
// not hang a Terraform apply for an hour.
func backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
			return min(d, hi)
		}
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
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, rb)
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
			Status: statusText(resp), Body: printable(snippet)}
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

// printable makes an error body safe to quote: one line, clipped, control
// bytes escaped.
func printable(b []byte) string {
	b = bytes.TrimSpace(b)
	s := strings.ToValidUTF8(string(b), "?")
	var sb strings.Builder
	for _, r := range s {
		if sb.Len() >= 200 {
			sb.WriteString("…")
			break
		}
		if r < ' ' || r == 0x7f {
			sb.WriteByte(' ')
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func clipStr(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
