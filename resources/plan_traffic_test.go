package resources_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// TestAccReplicaResource_planTraffic: DESIGN §9, "terraform plan on 20
// up-to-date replicas: one /v0/refs per replica, no object traffic".
//
// Twenty replicas of one primary are created; each reaches the primary
// through its own URL prefix (replicaURL), so requests are counted per
// replica. Then a plan-only step against the unchanged primary must be empty
// and cost exactly one GET /v0/refs per replica per `terraform plan`, and
// no request to any other path (in particular nothing under /v0/objects/).
//
// A PlanOnly step runs two plans (terraform-plugin-testing v1.16,
// testStepNewConfig): `plan -refresh=false`, then `plan` (with refresh).
//   - plan -refresh=false: no Read. Create kept a record of the
//     primary's refs in private state, so ModifyPlan plans from it and
//     asks the primary nothing.
//   - plan: Read asks the primary once and keeps the answer in private
//     state; ModifyPlan plans from that record and must not ask again.
//
// The step's wall times are logged for the §9 report, never asserted.
func TestAccReplicaResource_planTraffic(t *testing.T) {
	const replicas = 20
	p := newTestPrimary(t, primaryOptions{})
	tips := map[string]string{
		"example.com./main": p.commit("example.com.", "main"),
		"example.com./dev":  p.commit("example.com.", "dev"),
		"example.org./main": p.commit("example.org.", "main"),
		"example.net./main": p.commit("example.net.", "main"),
	}
	base := t.TempDir()
	config := fmt.Sprintf(`
resource "zonegit_replica" "r" {
  count       = %d
  path        = "%s/replica-${count.index}"
  primary_url = "%s${count.index}"
}
`, replicas, filepath.ToSlash(base), p.replicaURL(""))

	names := make([]string, replicas)
	var stateChecks []statecheck.StateCheck
	for i := range names {
		names[i] = fmt.Sprint(i)
		stateChecks = append(stateChecks,
			expectRefs(fmt.Sprintf("zonegit_replica.r[%d]", i), func() map[string]string { return tips }))
	}

	// expectTraffic checks that since the last reset every replica made
	// exactly refsPerReplica GET /v0/refs and nothing else reached the
	// primary.
	expectTraffic := func(stage string, refsPerReplica int) error {
		counts := p.requestCounts()
		var problems []string
		for _, name := range names {
			if n := counts[requestKey{name, replicate.BasePath + "/refs"}]; n != refsPerReplica {
				problems = append(problems, fmt.Sprintf("replica %s: %d GET /v0/refs, want %d", name, n, refsPerReplica))
			}
		}
		objects := 0
		for k, n := range counts {
			if isObjectPath(k.Path) {
				objects += n
			}
			if k.Path != replicate.BasePath+"/refs" || k.Replica == "" {
				problems = append(problems, fmt.Sprintf("unexpected requests: %d to %q via replica %q", n, k.Path, k.Replica))
			}
		}
		if len(problems) > 0 {
			sort.Strings(problems)
			return fmt.Errorf("after %s (%d object requests in all):\n  %s", stage, objects, strings.Join(problems, "\n  "))
		}
		t.Logf("after %s: %d GET /v0/refs from %d replicas (%d each), %d object requests",
			stage, refsPerReplica*replicas, replicas, refsPerReplica, objects)
		return nil
	}

	var start, afterNoRefresh time.Time
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			// Create the 20 replicas. Every one of them fetches objects
			// through its own prefix, which shows the counter sees object
			// traffic where there is some.
			{
				PreConfig:         p.resetRequests,
				Config:            config,
				ConfigStateChecks: stateChecks,
				Check: func(*terraform.State) error {
					counts := p.requestCounts()
					for _, name := range names {
						objects := 0
						for k, n := range counts {
							if k.Replica == name && isObjectPath(k.Path) {
								objects += n
							}
						}
						if objects == 0 {
							return fmt.Errorf("replica %s fetched no objects while being created: %v", name, counts)
						}
						if got := localRefs(t, filepath.Join(base, "replica-"+name)); fmt.Sprint(got) != fmt.Sprint(tips) {
							return fmt.Errorf("replica %s on disk has %v, want %v", name, got, tips)
						}
					}
					return nil
				},
			},
			// The primary has not changed: both plans are empty, the first
			// costs nothing and the second one GET /v0/refs per replica,
			// and there is no object traffic.
			{
				PreConfig: func() {
					p.resetRequests()
					start = time.Now()
				},
				Config:   config,
				PlanOnly: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPreRefresh: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan(),
						funcPlanCheck(func(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
							afterNoRefresh = time.Now()
							resp.Error = expectTraffic("plan -refresh=false", 0)
						}),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan(),
						funcPlanCheck(func(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
							end := time.Now()
							resp.Error = expectTraffic("plan -refresh=false and plan", 1)
							t.Logf("wall time for %d up-to-date replicas, each including `show -json` of the saved plan: "+
								"plan -refresh=false %v, plan (with refresh) %v",
								replicas, afterNoRefresh.Sub(start).Round(time.Millisecond), end.Sub(afterNoRefresh).Round(time.Millisecond))
						}),
					},
				},
			},
		},
	})
}
