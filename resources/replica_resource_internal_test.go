package resources

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// TestPlanRefsDiagnostics: planRefs turns replicate.PlanRefs' findings
// into diagnostics (the planning itself is tested with PlanRefs in
// replicate): a hostile name advertised by the primary is an error naming it.
func TestPlanRefsDiagnostics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	newLocalRepo(t, dir, "example.com.")
	bad := &replicate.RefsResponse{Branches: []replicate.Branch{{Zone: "example.com.", Name: "../x", Hash: strings.Repeat("1", 64)}}}
	opts := replicate.ClientOptions{PrimaryURL: "http://primary"}
	if _, diags := planRefs(context.Background(), opts, bad, dir, replicate.PullOptions{}); !diags.HasError() ||
		!strings.Contains(diags.Errors()[0].Detail(), `"../x"`) {
		t.Errorf("hostile branch name: %v", diags)
	}
}

func TestRefsDiff(t *testing.T) {
	want := map[string]string{"a./main": strings.Repeat("1", 64), "b./main": strings.Repeat("2", 64)}
	got := map[string]string{"a./main": strings.Repeat("1", 64), "c./main": strings.Repeat("3", 64)}
	d := replicate.RefsDiff(want, got, "planned", "(absent)")
	if d != "b./main: planned 222222222222, got (absent); c./main: planned (absent), got 333333333333" {
		t.Errorf("RefsDiff = %q", d)
	}
}
