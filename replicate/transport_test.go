package replicate_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// tricklePrimary answers /v0/refs with a valid start of a refs body, then
// one byte every gap until the client goes away: a hostile primary that
// would keep an idle timer alive for ever.
func tricklePrimary(t *testing.T, tls bool, gap time.Duration) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"zones":[`)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(gap):
			}
			if _, err := io.WriteString(w, " "); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// refsErr runs RefsInfo under a test deadline far beyond the rule being
// tested, so a client that is not cut off fails the test instead of
// hanging it.
func refsErr(t *testing.T, c *replicate.Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(context.Background(), 60*time.Second, errors.New("test deadline: the client was not cut off"))
	defer cancel()
	_, err := c.RefsInfo(ctx)
	if err == nil {
		t.Fatal("RefsInfo from a trickling primary succeeded")
	}
	return err
}

func TestStallTricklingPrimaryIsCutOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tls     bool
		replace func(c *replicate.Client, srv *httptest.Server)
	}{
		{"own transport", false, nil},
		// A caller that brings its own http.Client keeps the rule.
		{"replaced HTTP", false, func(c *replicate.Client, _ *httptest.Server) { c.HTTP = &http.Client{} }},
		{"replaced HTTP, TLS", true, func(c *replicate.Client, srv *httptest.Server) { c.HTTP = srv.Client() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tricklePrimary(t, tc.tls, 20*time.Millisecond)
			// The idle bound alone (RequestTimeout) never fires: a byte
			// comes every 20ms. The rate rule must.
			c := newClient(t, srv.URL, nil, func(o *replicate.ClientOptions) {
				o.RequestTimeout = 30 * time.Second
				o.StallWindow = 300 * time.Millisecond
				o.StallMinRate = 1024
			})
			if tc.replace != nil {
				tc.replace(c, srv)
			}
			err := refsErr(t, c)
			host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
			for _, want := range []string{"stalled", host, "below the minimum of 1024 bytes/s", "/v0/refs"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestStallSilentPrimaryIsCutOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(c *replicate.Client, srvURL string)
	}{
		{"own transport", nil},
		// A caller that brings its own http.Client keeps the per-request
		// timeout, even one taken from a client with a longer timeout.
		{"replaced HTTP", func(c *replicate.Client, _ string) { c.HTTP = &http.Client{} }},
		{"HTTP of another client", func(c *replicate.Client, srvURL string) {
			other := newClient(t, srvURL, nil, func(o *replicate.ClientOptions) { o.RequestTimeout = time.Hour })
			c.HTTP = other.HTTP
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Bytes every 20ms for a while, then silence: the idle bound
			// fires even though the rate rule's window is long.
			srv := tricklePrimary(t, false, time.Hour)
			c := newClient(t, srv.URL, nil, func(o *replicate.ClientOptions) {
				o.RequestTimeout = 200 * time.Millisecond
				o.StallWindow = time.Hour
			})
			if tc.replace != nil {
				tc.replace(c, srv.URL)
			}
			err := refsErr(t, c)
			if !strings.Contains(err.Error(), "no data for 200ms") || !strings.Contains(err.Error(), srv.Listener.Addr().String()) {
				t.Errorf("error %q: want the silence and the primary named", err)
			}
		})
	}
}

func TestStallDeadlineNamesCause(t *testing.T) {
	// A primary just fast enough for the stall rule: the caller's deadline
	// ends the pull, and the error says so rather than "context canceled".
	srv := tricklePrimary(t, false, 10*time.Millisecond)
	c := newClient(t, srv.URL, nil, func(o *replicate.ClientOptions) { o.StallMinRate = -1 })
	cause := errors.New("pull did not finish within --timeout 300ms")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 300*time.Millisecond, cause)
	defer cancel()
	_, err := c.RefsInfo(ctx)
	if err == nil || !strings.Contains(err.Error(), cause.Error()) {
		t.Errorf("error %v, want it to name %q", err, cause)
	}
}

// TestStallClockCountsOnlyWaiting shows that a reader busy with what it
// read (a slow disk) is not taken for a stalled primary: only time spent
// waiting for bytes counts, so pauses far longer than both bounds pass.
func TestStallClockCountsOnlyWaiting(t *testing.T) {
	payload := strings.Repeat("z", 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, payload)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil, func(o *replicate.ClientOptions) {
		o.RequestTimeout = 100 * time.Millisecond
		o.StallWindow = 100 * time.Millisecond
		o.StallMinRate = 1 << 20
	})
	resp, err := c.HTTP.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got strings.Builder
	buf := make([]byte, 16<<10)
	for {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got.Len(), err)
		}
		time.Sleep(250 * time.Millisecond) // busy storing
	}
	if got.String() != payload {
		t.Errorf("read %d bytes, want %d", got.Len(), len(payload))
	}
}

func TestStallSteadySlowPrimaryPasses(t *testing.T) {
	// 4 KiB/s against a 1 KiB/s minimum: slow, but never cut off.
	const chunks = 12
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"zones":[],"branches":[]`)
		for i := 0; i < chunks; i++ {
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
			_, _ = io.WriteString(w, strings.Repeat(" ", 400))
		}
		_, _ = io.WriteString(w, "}\n")
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil, func(o *replicate.ClientOptions) {
		o.StallWindow = 300 * time.Millisecond
		o.StallMinRate = 1024
	})
	if _, err := c.RefsInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// headerLog records what each loopback server was sent.
type headerLog struct {
	mu   sync.Mutex
	seen []http.Header
}

func (l *headerLog) add(h http.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, h.Clone())
}

func (l *headerLog) all() []http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]http.Header(nil), l.seen...)
}

func TestRedirectKeepsCredentialsAtPrimary(t *testing.T) {
	// Two loopback servers on the same host, different ports: the primary
	// redirects refs to the other one. The token and the configured extra
	// headers may only reach the primary's origin.
	var atOther, atPrimary headerLog
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atOther.add(r.Header)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"zones":[],"branches":[]}`)
	}))
	t.Cleanup(other.Close)
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atPrimary.add(r.Header)
		switch r.URL.Path {
		case "/v0/refs":
			// First a hop within the primary, which keeps credentials.
			http.Redirect(w, r, "/moved/v0/refs", http.StatusTemporaryRedirect)
		case "/moved/v0/refs":
			http.Redirect(w, r, other.URL+"/v0/refs", http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(primary.Close)

	for _, replaced := range []bool{false, true} {
		atOther.seen, atPrimary.seen = nil, nil
		c := newClient(t, primary.URL, nil, func(o *replicate.ClientOptions) {
			o.Token = "s3cret"
			o.Headers = map[string]string{"X-Api-Key": "k3y"}
		})
		if replaced {
			c.HTTP = &http.Client{}
		}
		if _, err := c.RefsInfo(context.Background()); err != nil {
			t.Fatalf("replaced=%v: %v", replaced, err)
		}
		p, o := atPrimary.all(), atOther.all()
		if len(p) != 2 || len(o) != 1 {
			t.Fatalf("replaced=%v: %d requests at the primary, %d at the other origin; want 2 and 1", replaced, len(p), len(o))
		}
		for i, h := range p {
			if h.Get("Authorization") != "Bearer s3cret" || h.Get("X-Api-Key") != "k3y" {
				t.Errorf("replaced=%v: primary request %d lacks its credentials: %v", replaced, i, h)
			}
		}
		if h := o[0]; h.Get("Authorization") != "" || h.Get("X-Api-Key") != "" {
			t.Errorf("replaced=%v: credentials sent to another origin: %v", replaced, h)
		} else if h.Get("User-Agent") == "" {
			t.Errorf("replaced=%v: the other origin got no User-Agent: %v", replaced, h)
		}
	}
}

func TestRedirectLoopStops(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil, nil)
	_, err := c.RefsInfo(context.Background())
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Fatalf("error %v, want the redirect limit", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 10 {
		t.Errorf("%d requests, want 10 (one try, never retried)", hits)
	}
}

func TestValidatePrimaryURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://127.0.0.1:9354", ""},
		{"https://primary.example/prefix/", ""},
		{"http://[::1]:8080", ""},
		{"http://127.0.0.1:99999", "port 99999 out of range 1-65535"},
		{"http://127.0.0.1:0", "port 0 out of range"},
		{"http://127.0.0.1:", "empty port"},
		{"http://:9354", "no host"},
		{"http://user:pw@127.0.0.1:9354", "must not contain user info"},
		{"http://127.0.0.1:9354/?x=1", "query or fragment"},
		{"ftp://127.0.0.1", "scheme must be http or https"},
		{"http://127.0.0.1:12ab", "invalid port"},
		{"", "empty"},
	} {
		err := replicate.ValidatePrimaryURL(tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.url, err, tc.want)
		case strings.Contains(tc.url, "pw@"):
			if strings.Contains(err.Error(), ":pw@") || !strings.Contains(err.Error(), "user:xxxxx@127.0.0.1") {
				t.Errorf("%q: error %v, want the value named without its password", tc.url, err)
			}
		case tc.want != "" && tc.url != "" && !strings.Contains(err.Error(), `"`+tc.url+`"`):
			t.Errorf("%q: error %v does not name the value", tc.url, err)
		}
	}
	// NewClientWithOptions (and so the provider) applies the same rule.
	if _, err := replicate.NewClientWithOptions(nil, replicate.ClientOptions{PrimaryURL: "http://127.0.0.1:99999"}); err == nil {
		t.Error("NewClientWithOptions accepted port 99999")
	}
}

func TestBusyPrimaryGetsMorePatience(t *testing.T) {
	// 503 with a Retry-After is a busy primary (ours sheds load that
	// way): a request waits out up to 4 such answers per configured
	// retry, on top of the retries for failures. Without a Retry-After, a
	// 503 is a failure like any other.
	for _, tc := range []struct {
		name       string
		retryAfter string
		busyFor    int // requests answered 503
		wantOK     bool
		wantTries  int
	}{
		{"busy, then in", "1", 12, true, 13},
		{"busy for ever", "1", 1000, false, 1 + 4*4},
		{"503 without Retry-After", "", 1000, false, 1 + 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			tries := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				tries++
				n := tries
				mu.Unlock()
				if n <= tc.busyFor {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					http.Error(w, "server busy", http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"zones":[],"branches":[]}`)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, nil, func(o *replicate.ClientOptions) { o.RetryMaxDelay = 2 * time.Millisecond })
			_, err := c.RefsInfo(context.Background())
			if ok := err == nil; ok != tc.wantOK {
				t.Errorf("error %v, want success %v", err, tc.wantOK)
			}
			if err != nil && !strings.Contains(err.Error(), "503") {
				t.Errorf("error %q does not give the status", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if tries != tc.wantTries {
				t.Errorf("%d tries, want %d", tries, tc.wantTries)
			}
		})
	}
}
