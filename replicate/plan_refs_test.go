package replicate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// TestPlanRefs: the planned refs are the local branches with the selected
// primary tips, pins and prunes applied (with prune, also without the local
// branches the selection leaves out); a pin that would move its branch is
// asked of the primary once, an applied pin costs nothing, and a pin the
// primary does not have is a PinError wrapping repo.ErrNotFound.
func TestPlanRefs(t *testing.T) {
	pr, err := repo.Open(t.TempDir(), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	pinA, err := repotest.SyntheticZone(pr, "example.com.", "old", 3)
	if err != nil {
		t.Fatal(err)
	}
	pinB, err := repotest.SyntheticZone(pr, "gone.example.", "old", 4)
	if err != nil {
		t.Fatal(err)
	}
	var objectGets atomic.Int64
	srv := &replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return pr, nil }}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, replicate.BasePath+"/objects/") {
			objectGets.Add(1)
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	client, err := replicate.NewClientWithOptions(nil, replicate.ClientOptions{PrimaryURL: ts.URL, RetryAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}

	h := func(c string) string { return strings.Repeat(c, 64) }
	hash := func(s string) repo.Hash {
		x, err := repo.ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	local := []repo.Ref{
		{Zone: "example.com.", Name: "main", Hash: hash(h("a"))},
		{Zone: "gone.example.", Name: "main", Hash: hash(h("b"))},
	}
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
		gets int64 // object requests: pin checks
	}{
		{"all", replicate.PullOptions{}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"), "gone.example./main": h("b"),
		}, 0},
		{"prune", replicate.PullOptions{Prune: true}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"),
		}, 0},
		// Without prune a branch outside the selection stays as it is.
		{"filters", replicate.PullOptions{Zones: []string{"example.com."}, Branches: []string{"main"}}, map[string]string{
			"example.com./main": h("1"), "gone.example./main": h("b"),
		}, 0},
		// With prune the replica holds exactly its selection.
		{"filters and prune", replicate.PullOptions{Zones: []string{"example.com."}, Branches: []string{"main"}, Prune: true}, map[string]string{
			"example.com./main": h("1"),
		}, 0},
		{"pin", replicate.PullOptions{Zones: []string{"example.org."}, Pins: map[string]string{"example.com./main": pinA.String()}}, map[string]string{
			"example.com./main": pinA.String(), "example.org./main": h("3"), "gone.example./main": h("b"),
		}, 1},
		{"pin and prune", replicate.PullOptions{Zones: []string{"example.org."}, Pins: map[string]string{"gone.example./main": pinB.String()}, Prune: true}, map[string]string{
			"gone.example./main": pinB.String(), "example.org./main": h("3"),
		}, 1},
	} {
		before := objectGets.Load()
		p, err := client.PlanRefs(ctx, primary, local, tc.sel)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(p.Invalid) != 0 || len(p.Pins) != 0 {
			t.Errorf("%s: invalid %v, pins %v", tc.name, p.Invalid, p.Pins)
		}
		if len(p.Current) != 2 || p.Current["example.com./main"] != h("a") || p.Current["gone.example./main"] != h("b") {
			t.Errorf("%s: current refs %v", tc.name, p.Current)
		}
		if len(p.Refs) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, p.Refs, tc.want)
		}
		for k, v := range tc.want {
			if p.Refs[k] != v {
				t.Errorf("%s: %s = %s, want %s", tc.name, k, p.Refs[k], v)
			}
		}
		if got := objectGets.Load() - before; got != tc.gets {
			t.Errorf("%s: %d pin checks, want %d", tc.name, got, tc.gets)
		}
	}

	// A pin the replica already holds is not asked about.
	before := objectGets.Load()
	p, err := client.PlanRefs(ctx, primary, local, replicate.PullOptions{Pins: map[string]string{"example.com./main": h("a")}})
	if err != nil || len(p.Pins) != 0 || objectGets.Load() != before {
		t.Errorf("applied pin: %v %v, %d requests", err, p.Pins, objectGets.Load()-before)
	}
	// A pin the primary does not have is a PinError naming it.
	p, err = client.PlanRefs(ctx, primary, local, replicate.PullOptions{Pins: map[string]string{"example.com./main": h("c")}})
	if err != nil || len(p.Pins) != 1 || p.Pins[0].Key != "example.com./main" || !errors.Is(p.Pins[0], repo.ErrNotFound) {
		t.Errorf("missing pin: %v %v", err, p.Pins)
	}
	// An invalid selection is the error.
	if _, err := client.PlanRefs(ctx, primary, local, replicate.PullOptions{Pins: map[string]string{"example.com./main": "zz"}}); err == nil {
		t.Error("bad pin hash: no error")
	}
	// A hostile name advertised by the primary is Invalid, and pins are
	// then not checked.
	bad := &replicate.RefsResponse{Branches: []replicate.Branch{{Zone: "example.com.", Name: "../x", Hash: h("1")}}}
	before = objectGets.Load()
	p, err = client.PlanRefs(ctx, bad, local, replicate.PullOptions{Pins: map[string]string{"example.org./main": h("c")}})
	if err != nil || len(p.Invalid) != 1 || p.Invalid[0].Name != "../x" || objectGets.Load() != before {
		t.Errorf("hostile branch name: %v %v", err, p.Invalid)
	}
}
