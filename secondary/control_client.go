package secondary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
)

// ControlOptions configure a ControlClient. TLS material has the shape of
// replicate.ClientOptions, and the HTTP client is built by the same code
// (replicate.NewHTTPClient). Zero values take the defaults noted.
type ControlOptions struct {
	Token          string        // the daemon's control token (bearer); never logged
	CACertPEM      string        // extra CA bundle (PEM) for the daemon's certificate
	ClientCertPEM  string        // mTLS certificate (PEM), with ClientKeyPEM
	ClientKeyPEM   string        // mTLS key (PEM)
	Insecure       bool          // skip TLS verification (only when asked)
	RequestTimeout time.Duration // per request attempt, headers and body silence; default 30s
	RetryAttempts  int           // retries after the first try; default 3, negative = none
	RetryMinDelay  time.Duration // default 200ms
	RetryMaxDelay  time.Duration // default 5s
	UserAgent      string        // default "terraform-provider-zonegit/dev"
	// Logger receives the requests and retries (go-retryablehttp's leveled
	// lines), as replicate.ClientOptions.Logger does for a primary; nil:
	// silent.
	Logger wire.Logger
}

// ControlClient talks to one secondary daemon's control API.
type ControlClient struct {
	base  string // the daemon's URL without a trailing slash
	token string
	ua    string
	rc    *retryablehttp.Client
}

// ControlError is a 4xx or 5xx answer of the control API.
type ControlError struct {
	URL     string // the request's URL
	Status  int    // the HTTP status code
	Message string // the daemon's {"error": "..."} text, escaped for display
}

func (e *ControlError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// maxControlAnswer bounds an answer read from a daemon: a Status or Plan
// holds one hash per branch, far below this even for large fleets.
const maxControlAnswer = 64 << 20

const (
	defaultControlRetries = 3
	defaultControlTimeout = 30 * time.Second
)

// NewControlClient builds a client for the daemon at daemonURL (http(s),
// the same URL rules as a primary's: no user info, query or fragment).
func NewControlClient(daemonURL string, opts ControlOptions) (*ControlClient, error) {
	if err := replicate.ValidatePrimaryURL(daemonURL); err != nil {
		// The rule names the URL a "primary URL"; here it is the daemon's.
		return nil, fmt.Errorf("secondary daemon URL: %w", err)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = defaultControlTimeout
	}
	switch {
	case opts.RetryAttempts < 0:
		opts.RetryAttempts = 0
	case opts.RetryAttempts == 0:
		opts.RetryAttempts = defaultControlRetries
	}
	co := replicate.ClientOptions{
		PrimaryURL:     daemonURL,
		CACertPEM:      opts.CACertPEM,
		ClientCertPEM:  opts.ClientCertPEM,
		ClientKeyPEM:   opts.ClientKeyPEM,
		Insecure:       opts.Insecure,
		RequestTimeout: opts.RequestTimeout,
		RetryMinDelay:  opts.RetryMinDelay,
		RetryMaxDelay:  opts.RetryMaxDelay,
		UserAgent:      opts.UserAgent,
	}.WithDefaults()
	hc, err := replicate.NewHTTPClient(co)
	if err != nil {
		return nil, fmt.Errorf("secondary daemon %s: %w", daemonURL, err)
	}
	rc := &retryablehttp.Client{
		HTTPClient:   hc,
		RetryWaitMin: co.RetryMinDelay,
		RetryWaitMax: co.RetryMaxDelay,
		RetryMax:     opts.RetryAttempts,
		CheckRetry:   controlRetryPolicy,
		Backoff:      retryablehttp.DefaultBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	if opts.Logger != nil {
		rc.Logger = opts.Logger
	}
	return &ControlClient{base: strings.TrimRight(daemonURL, "/"), token: opts.Token, ua: co.UserAgent, rc: rc}, nil
}

// controlRetryPolicy retries what a proxy or a restarting daemon answers:
// connection errors, 502, 503 and 504. Anything else the daemon answered
// on purpose (a 4xx about the request, a 500 about itself), and repeating
// it would only repeat the answer.
func controlRetryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		// DefaultRetryPolicy knows the errors not worth a retry (bad
		// certificates, too many redirects, a bad URL scheme).
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, nil
	}
	return false, nil
}

// URL is the daemon's URL as given (without a trailing slash).
func (c *ControlClient) URL() string { return c.base }

// Status is GET /status.
func (c *ControlClient) Status(ctx context.Context) (*Status, error) {
	var out Status
	if err := c.do(ctx, http.MethodGet, "/status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Plan is POST /plan: the refs an apply of d would produce now.
func (c *ControlClient) Plan(ctx context.Context, d Desired) (*Plan, error) {
	var out Plan
	if err := c.do(ctx, http.MethodPost, "/plan", d, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Apply is PUT /desired: store the desired state and pull now. Branches
// that failed are in the result's Pull.Errors, not in the error.
func (c *ControlClient) Apply(ctx context.Context, r ApplyRequest) (*ApplyResult, error) {
	var out ApplyResult
	if err := c.do(ctx, http.MethodPut, "/desired", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Clear is DELETE /desired: forget the desired state and stop following;
// the replica's data stays.
func (c *ControlClient) Clear(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/desired", nil, nil)
}

// Offer is GET /offer: what the daemon's primary offers now.
func (c *ControlClient) Offer(ctx context.Context) (*replicate.RefsResponse, error) {
	var out replicate.RefsResponse
	if err := c.do(ctx, http.MethodGet, "/offer", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Pulls is GET /pulls: the last pulls, newest first.
func (c *ControlClient) Pulls(ctx context.Context) ([]PullReport, error) {
	var out []PullReport
	if err := c.do(ctx, http.MethodGet, "/pulls", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// do sends one request (retried per controlRetryPolicy) and decodes a 2xx
// answer into out (nil: the body is ignored).
func (c *ControlClient) do(ctx context.Context, method, path string, in, out any) error {
	u := c.base + ControlPath + path
	var body any
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encoding request: %w", method, u, err)
		}
		body = b
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			_ = resp.Body.Close()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, u, context.Cause(ctx))
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: secondary daemon unreachable: %w", method, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		if !isJSON(resp) && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) {
			// Not the daemon's {"error"}: another server's page.
			return notDaemon(method, u, resp)
		}
		return &ControlError{URL: u, Status: resp.StatusCode, Message: errorMessage(resp.Body)}
	}
	// The daemon answers JSON, or 204 with nothing: anything else is
	// another server (a primary answers any path with its banner), and
	// taking its 200 for an answer would report a change never made.
	if resp.StatusCode == http.StatusNoContent && out == nil {
		return nil
	}
	if !isJSON(resp) || resp.StatusCode == http.StatusNoContent {
		return notDaemon(method, u, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxControlAnswer+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, u, err)
	}
	if len(b) > maxControlAnswer {
		return fmt.Errorf("%s %s: answer larger than %d MiB", method, u, maxControlAnswer>>20)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, u, err)
	}
	return nil
}

// ErrNotDaemon is an answer that is not the control API's: the URL is
// another server's (a primary's, say), or a proxy's in between.
var ErrNotDaemon = errors.New("not a zonegit secondary daemon's control API")

func isJSON(resp *http.Response) bool {
	ct := resp.Header.Get("Content-Type")
	return ct == "application/json" || strings.HasPrefix(ct, "application/json;")
}

// notDaemon describes an answer that is not the daemon's, quoting its start.
func notDaemon(method, u string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200)) // a quote only; the status says enough without it
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "no Content-Type"
	}
	return fmt.Errorf("%s %s: %w: the server answered %d (%s): %q", method, u, ErrNotDaemon, resp.StatusCode,
		wire.SafeText(ct), wire.SafeText(strings.TrimSpace(string(b))))
}

// maxErrorAnswer bounds an error body read; messages are one line.
const maxErrorAnswer = 8 << 10

// errorMessage is the daemon's {"error": "..."} text, or the start of a
// body that is not one (a proxy's page), escaped for one display line.
func errorMessage(r io.Reader) string {
	b, err := io.ReadAll(io.LimitReader(r, maxErrorAnswer))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if err != nil {
		// The status still says what happened; say the body was cut.
		msg += fmt.Sprintf(" (error body cut short: %v)", err)
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if len(msg) > 1024 {
		msg = msg[:1024] + "…"
	}
	return wire.SafeText(msg)
}
