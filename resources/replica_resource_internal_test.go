package resources

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// TestPlanRefs: the planned refs are the local branches with the selected
// primary tips, pins and prunes applied.
func TestPlanRefs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	local := newLocalRepo(t, dir, "example.com.", "gone.example.")
	h := func(c string) string { return strings.Repeat(c, 64) }
	primary := &replicate.RefsResponse{
		Zones: []string{"example.com.", "example.org."},
		Branches: []replicate.Branch{
			{Zone: "example.com.", Name: "main", Hash: h("1")},
			{Zone: "example.com.", Name: "dev", Hash: h("2")},
			{Zone: "example.org.", Name: "main", Hash: h("3")},
		},
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		sel  replicate.PullOptions
		want map[string]string
	}{
		{"all", replicate.PullOptions{}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"),
			"gone.example./main": local["gone.example./main"],
		}},
		{"prune", replicate.PullOptions{Prune: true}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"),
		}},
		// Without prune a branch outside the selection stays as it is.
		{"filters", replicate.PullOptions{Zones: []string{"example.com."}, Branches: []string{"main"}}, map[string]string{
			"example.com./main": h("1"), "gone.example./main": local["gone.example./main"],
		}},
		// With prune the replica holds exactly its selection.
		{"filters and prune", replicate.PullOptions{Zones: []string{"example.com."}, Branches: []string{"main"}, Prune: true}, map[string]string{
			"example.com./main": h("1"),
		}},
		{"pin", replicate.PullOptions{Zones: []string{"example.org."}, Pins: map[string]string{"example.com./main": h("9")}}, map[string]string{
			"example.com./main": h("9"), "example.org./main": h("3"), "gone.example./main": local["gone.example./main"],
		}},
		{"pin and prune", replicate.PullOptions{Zones: []string{"example.org."}, Pins: map[string]string{"gone.example./main": h("9")}, Prune: true}, map[string]string{
			"gone.example./main": h("9"), "example.org./main": h("3"),
		}},
	} {
		got, current, diags := planRefs(ctx, primary, "http://primary", dir, tc.sel)
		if diags.HasError() {
			t.Fatalf("%s: %v", tc.name, diags)
		}
		if len(current) != len(local) || current["example.com./main"] != local["example.com./main"] {
			t.Errorf("%s: current refs %v, want %v", tc.name, current, local)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %s, want %s", tc.name, k, got[k], v)
			}
		}
	}

	// A hostile name advertised by the primary is an error naming it.
	bad := &replicate.RefsResponse{Branches: []replicate.Branch{{Zone: "example.com.", Name: "../x", Hash: h("1")}}}
	if _, _, diags := planRefs(ctx, bad, "http://primary", dir, replicate.PullOptions{}); !diags.HasError() ||
		!strings.Contains(diags.Errors()[0].Detail(), `"../x"`) {
		t.Errorf("hostile branch name: %v", diags)
	}
}

func TestRefsDiff(t *testing.T) {
	want := map[string]string{"a./main": strings.Repeat("1", 64), "b./main": strings.Repeat("2", 64)}
	got := map[string]string{"a./main": strings.Repeat("1", 64), "c./main": strings.Repeat("3", 64)}
	d := refsDiff(want, got)
	if d != "b./main: planned 222222222222, got (absent); c./main: planned (absent), got 333333333333" {
		t.Errorf("refsDiff = %q", d)
	}
}
