package secondary_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// TestControlClientRetries: the client retries 502/503/504 and connection
// failures (bounded), never a 4xx or 500; a daemon's error message comes
// back escaped in a *ControlError; an unreachable daemon is an error naming
// its URL.
func TestControlClientRetries(t *testing.T) {
	var calls atomic.Int64
	var failFirst atomic.Int64
	var status atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Path != secondary.ControlPath+"/status" {
			http.Error(w, `{"error":"bad request"}`, http.StatusTeapot)
			return
		}
		if failFirst.Add(-1) >= 0 {
			w.WriteHeader(int(status.Load()))
			_, _ = w.Write([]byte(`{"error":"line one\nline two \u001b[31m"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json") // as the daemon answers
		_, _ = w.Write([]byte(`{"primary":"http://p","follow":"","desired":null,"refs":{},"last_pull":null,"busy":false}`))
	}))
	t.Cleanup(ts.Close)
	c, err := secondary.NewControlClient(ts.URL, secondary.ControlOptions{Token: "tok", RetryAttempts: 3,
		RetryMinDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, code := range []int{502, 503, 504} {
		calls.Store(0)
		failFirst.Store(2)
		status.Store(int64(code))
		if st, err := c.Status(ctx); err != nil || st.Primary != "http://p" || calls.Load() != 3 {
			t.Errorf("%d twice, then 200: %v %+v after %d calls", code, err, st, calls.Load())
		}
	}
	for _, code := range []int{400, 409, 422, 500} {
		calls.Store(0)
		failFirst.Store(1)
		status.Store(int64(code))
		_, err := c.Status(ctx)
		var ce *secondary.ControlError
		if !errors.As(err, &ce) || ce.Status != code || calls.Load() != 1 {
			t.Errorf("%d: %v after %d calls, want one call and a ControlError", code, err, calls.Load())
			continue
		}
		if strings.ContainsAny(ce.Message, "\n\x1b") || !strings.Contains(ce.Message, `line one\nline two \x1b[31m`) {
			t.Errorf("%d: message not escaped: %q", code, ce.Message)
		}
		if !strings.Contains(err.Error(), ts.URL+secondary.ControlPath+"/status") {
			t.Errorf("%d: error does not name the URL: %v", code, err)
		}
	}
	// Retries are bounded.
	calls.Store(0)
	failFirst.Store(100)
	status.Store(503)
	if _, err := c.Status(ctx); err == nil || calls.Load() != 4 {
		t.Errorf("always 503: %v after %d calls, want an error after 4", err, calls.Load())
	}

	// Nothing listening: an error naming the daemon.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	d, err := secondary.NewControlClient(dead, secondary.ControlOptions{RetryAttempts: 1, RetryMinDelay: time.Millisecond, RetryMaxDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var ce *secondary.ControlError
	if _, err := d.Status(ctx); err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable daemon: %v", err)
	}
	// A bad URL is refused up front.
	if _, err := secondary.NewControlClient("ftp://x", secondary.ControlOptions{}); err == nil || !strings.Contains(err.Error(), "ftp://x") {
		t.Errorf("bad URL: %v", err)
	}
}
