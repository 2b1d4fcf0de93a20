package resources

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// TestClientLogSummarisesObjectRequests: a pull from a v0 primary (one GET
// per object) logs the first objectLinesShown object requests and then one
// summary line with the count, not one debug line per object; other
// request lines are all logged.
func TestClientLogSummarisesObjectRequests(t *testing.T) {
	primary, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	var zone strings.Builder
	zone.WriteString("$ORIGIN example.com.\n@ 300 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\n")
	for i := range 40 {
		fmt.Fprintf(&zone, "h%d IN A 192.0.2.%d\n", i, i+1)
	}
	if _, err := primary.Import(context.Background(), repo.ImportOptions{Zone: "example.com.", Source: strings.NewReader(zone.String())}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return primary, nil }, V0Only: true}).Handler())
	defer srv.Close()

	local, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	var buf bytes.Buffer
	ctx, opts := withClientLogging(tflogtest.RootLogger(context.Background(), &buf), replicate.ClientOptions{PrimaryURL: srv.URL})
	client, err := replicate.NewClientWithOptions(local, opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.PullWith(ctx, replicate.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logRequestSummary(opts)

	lines, err := tflogtest.MultilineJSONDecode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var objectLines, otherLines int
	var summary map[string]any
	for _, l := range lines {
		switch l["@message"] {
		case "performing request":
			if strings.Contains(l["url"].(string), "/v0/objects/") && l["method"] == "GET" {
				objectLines++
			} else {
				otherLines++
			}
		case "per-object requests (v0 primary)":
			summary = l
		}
	}
	if res.Objects <= objectLinesShown {
		t.Fatalf("the pull fetched %d objects; the test needs more than %d", res.Objects, objectLinesShown)
	}
	if objectLines != objectLinesShown {
		t.Errorf("%d per-object request lines logged, want %d", objectLines, objectLinesShown)
	}
	if otherLines == 0 {
		t.Errorf("no other request line logged (GET /v0/refs, POST walk), want them all")
	}
	if summary == nil {
		t.Fatalf("no summary line in the log:\n%v", lines)
	}
	// JSON numbers decode as float64.
	if got := summary["requests"]; got != float64(res.Objects) {
		t.Errorf("summary counts %v object requests, the pull fetched %d objects", got, res.Objects)
	}
	if got := summary["not_logged"]; got != float64(res.Objects-objectLinesShown) {
		t.Errorf("summary says %v not logged, want %d", got, res.Objects-objectLinesShown)
	}
}

// TestControlClientLogs: a secondary daemon's control client logs its
// requests and retries through tflog like the primary's client, with the
// control token masked.
func TestControlClientLogs(t *testing.T) {
	const token = "control-token-not-for-logs"
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"busy"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"primary":"http://p","follow":"","desired":null,"refs":{},"last_pull":null,"busy":false}`))
	}))
	defer srv.Close()
	var buf bytes.Buffer
	ctx, opts := withControlLogging(tflogtest.RootLogger(context.Background(), &buf),
		secondary.ControlOptions{Token: token, RetryMinDelay: time.Millisecond, RetryMaxDelay: time.Millisecond})
	c, err := secondary.NewControlClient(srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), token) {
		t.Errorf("the control token is in the log:\n%s", buf.String())
	}
	lines, err := tflogtest.MultilineJSONDecode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var requests, retries int
	for _, l := range lines {
		switch l["@message"] {
		case "performing request":
			if u, _ := l["url"].(string); strings.Contains(u, secondary.ControlPath+"/status") {
				requests++
			}
		case "retrying request":
			retries++
		}
	}
	// go-retryablehttp logs a request once, and each retry.
	if requests != 1 || retries != 1 || calls.Load() != 2 {
		t.Errorf("%d control request lines and %d retry lines for %d calls, want 1 and 1 for 2:\n%v", requests, retries, calls.Load(), lines)
	}
}

func TestLogFields(t *testing.T) {
	f := fields([]interface{}{"url", "http://x", "attempt", 2, 7, "odd", "dangling"})
	if f["url"] != "http://x" || f["attempt"] != 2 || f["arg4"] != "odd" || f["dangling"] != "(missing value)" {
		t.Errorf("fields = %v", f)
	}
	if fields(nil) != nil {
		t.Error("no fields: want nil")
	}
}
