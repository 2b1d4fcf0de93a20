package resources

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
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

func TestLogFields(t *testing.T) {
	f := fields([]interface{}{"url", "http://x", "attempt", 2, 7, "odd", "dangling"})
	if f["url"] != "http://x" || f["attempt"] != 2 || f["arg4"] != "odd" || f["dangling"] != "(missing value)" {
		t.Errorf("fields = %v", f)
	}
	if fields(nil) != nil {
		t.Error("no fields: want nil")
	}
}
