package secondary_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// TestApplyExpectEmpty: a plan of "no branches at all" travels as
// "expect": {} and is applied exactly: a primary that grew a matching
// branch after the plan adds nothing, and with prune every branch goes.
// Only an absent (or null) expect makes the daemon plan by itself.
func TestApplyExpectEmpty(t *testing.T) {
	for _, tc := range []struct {
		req  secondary.ApplyRequest
		want string
	}{
		{secondary.ApplyRequest{Expect: map[string]string{}}, `"expect":{}`},
		{secondary.ApplyRequest{}, `"expect":null`},
	} {
		b, err := json.Marshal(tc.req)
		if err != nil || !strings.Contains(string(b), tc.want) {
			t.Errorf("%+v encodes as %s (%v), want %s in it", tc.req, b, err, tc.want)
		}
	}

	p := newTestPrimary(t)
	com := p.commit("example.com.", "main")
	td := startDaemon(t, p.url, daemonOptions{})
	ctx := context.Background()
	none := secondary.Desired{Zones: []string{"new.example."}}
	plan, err := td.ctl.Plan(ctx, none)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Refs == nil || len(plan.Refs) != 0 {
		t.Fatalf("plan of a selection matching nothing: %#v, want an empty map", plan.Refs)
	}
	p.commit("new.example.", "main") // between plan and apply
	res := td.apply(t, secondary.ApplyRequest{Desired: none, Expect: plan.Refs})
	if len(res.Status.Refs) != 0 || len(res.Pull.Moved) != 0 || res.Pull.Error != "" {
		t.Fatalf("apply of an empty plan: refs %v, pull %+v; want nothing", res.Status.Refs, res.Pull)
	}

	// Absent expect: the daemon plans now, and pulls the new branch.
	res = td.apply(t, secondary.ApplyRequest{Desired: none})
	if len(res.Status.Refs) != 1 || res.Status.Refs["new.example./main"] == "" {
		t.Fatalf("apply without expect: refs %v", res.Status.Refs)
	}
	// The same, written by hand: "expect": null is absent.
	if status, msg := rawRequest(t, http.MethodPut, td.url+secondary.ControlPath+"/desired", controlToken,
		[]byte(`{"desired":{"zones":["example.com."]},"expect":null}`)); status != 200 {
		t.Fatalf("expect null: %d %s", status, msg)
	}
	if got := td.refs(t); got["example.com./main"] != com {
		t.Fatalf("expect null did not plan: %v", got)
	}

	// With prune, an empty expect deletes every branch, even ones the
	// selection matches and the primary has.
	res = td.apply(t, secondary.ApplyRequest{Desired: secondary.Desired{Prune: true}, Expect: map[string]string{}})
	if len(res.Status.Refs) != 0 || len(res.Pull.Moved) != 2 || res.Pull.Error != "" {
		t.Fatalf("apply of an empty plan with prune: refs %v, pull %+v", res.Status.Refs, res.Pull)
	}
}

// TestFollowPlansExactly: a follow round plans and pulls exactly as an
// apply without expect does. With prune, a branch outside the selection
// (left there by an exact apply) is deleted by the next round, and a
// branch deleted on the primary is deleted too; pinned branches stay.
func TestFollowPlansExactly(t *testing.T) {
	const interval = 100 * time.Millisecond
	p := newTestPrimary(t)
	com := p.commit("example.com.", "main")
	org := p.commit("example.org.", "main")
	dev := p.commit("example.com.", "dev")
	td := startDaemon(t, p.url, daemonOptions{follow: interval})
	ctx := context.Background()

	// Hold all three, though only example.com. is selected: the apply
	// does what its expect says.
	all := map[string]string{"example.com./main": com, "example.org./main": org, "example.com./dev": dev}
	desired := secondary.Desired{Zones: []string{"example.com."}, Prune: true, Follow: true,
		Pins: map[string]string{"example.com./main": com}}
	res := td.apply(t, secondary.ApplyRequest{Desired: desired, Expect: all})
	if !maps.Equal(res.Status.Refs, all) {
		t.Fatalf("exact apply: %v, want %v", res.Status.Refs, all)
	}
	// The next rounds plan by the desired state: example.org./main leaves.
	plan, err := td.ctl.Plan(ctx, desired)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"example.com./main": com, "example.com./dev": dev}
	if !maps.Equal(plan.Refs, want) {
		t.Fatalf("plan: %v, want %v", plan.Refs, want)
	}
	waitFor(t, 5*time.Second, "a follow round pruning the branch outside the selection", func() bool {
		return maps.Equal(td.refs(t), want)
	})

	// The primary deletes example.com./dev and moves example.com./main
	// (pinned): the branch goes, the pin holds.
	h, err := repo.ParseHash(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.r.UpdateBranch("example.com.", "dev", h, repo.Hash{}, nil); err != nil {
		t.Fatal(err)
	}
	p.commit("example.com.", "main")
	want = map[string]string{"example.com./main": com}
	waitFor(t, 5*time.Second, "a follow round pruning the branch the primary deleted", func() bool {
		return maps.Equal(td.refs(t), want)
	})
	var pruned bool
	waitFor(t, 5*time.Second, "the pruning round's report", func() bool {
		for _, r := range mustPulls(t, td) {
			for _, m := range r.Moved {
				pruned = pruned || (m.Ref == "example.com./dev" && m.Pruned && r.Trigger == secondary.TriggerFollow)
			}
		}
		return pruned
	})
	time.Sleep(3 * interval)
	if got := td.refs(t); !maps.Equal(got, want) {
		t.Errorf("after more rounds: %v, want %v", got, want)
	}
}

// TestFollowPlanFails: a round whose plan fails (a pin the primary lost)
// pulls nothing, and its report says why, as a failed apply would.
func TestFollowPlanFails(t *testing.T) {
	const interval = 100 * time.Millisecond
	p := newTestPrimary(t)
	com := p.commit("example.com.", "main")
	td := startDaemon(t, p.url, daemonOptions{follow: interval})
	missing := strings.Repeat("ab", 32)
	// Applied by expect, so the pin is not checked by a plan.
	td.apply(t, secondary.ApplyRequest{
		Desired: secondary.Desired{Follow: true, Pins: map[string]string{"example.org./main": missing}},
		Expect:  map[string]string{"example.com./main": com},
	})
	var last secondary.PullReport
	waitFor(t, 5*time.Second, "a failed follow round", func() bool {
		last = mustPulls(t, td)[0]
		return last.Trigger != secondary.TriggerApply
	})
	if !strings.Contains(last.Error, missing) || len(last.Moved) != 0 {
		t.Errorf("failed round: %+v, want an error naming %s", last, missing)
	}
	if got := td.refs(t); !maps.Equal(got, map[string]string{"example.com./main": com}) {
		t.Errorf("refs after a failed round: %v", got)
	}
}
