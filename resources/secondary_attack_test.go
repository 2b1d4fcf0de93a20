package resources_test

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
)

// TestAccSecondaryResource_emptyPlan: a secondary whose selection matches
// nothing plans no refs, and its apply produces exactly none even when the
// primary grows a matching branch between plan and apply (the empty plan
// travels as an empty expect, not as "no plan"). The next apply pulls it.
func TestAccSecondaryResource_emptyPlan(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	s := newTestSecondary(t, "a", p.URL, secondaryOptions{})
	secs := []*testSecondary{s}
	var grown string
	none := func() map[string]string { return map[string]string{} }
	config := func(prune bool) string {
		extra := `zones = ["new.example."]`
		if prune {
			extra += "\n  prune = true"
		}
		return fleetConfig("", secs, nil, extra)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            config(false),
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectPlannedRefs(fleetAddr("a"), none)}},
				ConfigStateChecks: []statecheck.StateCheck{daemonHolds(s, none), expectRefs(fleetAddr("a"), none)},
			},
			// An update planned from the refresh: still nothing; the
			// primary grows new.example./main after the plan.
			{
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fleetAddr("a"), plancheck.ResourceActionUpdate),
					expectPlannedRefs(fleetAddr("a"), none),
					funcPlanCheck(func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
						grown = p.commit("new.example.", "main")
					}),
				}},
				ConfigStateChecks:  []statecheck.StateCheck{daemonHolds(s, none), expectRefs(fleetAddr("a"), none)},
				ExpectNonEmptyPlan: true,
			},
			{
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectPlannedRefs(fleetAddr("a"), func() map[string]string { return map[string]string{"new.example./main": grown} }),
				}},
				ConfigStateChecks: []statecheck.StateCheck{daemonHolds(s, func() map[string]string {
					return map[string]string{"new.example./main": grown}
				})},
			},
			destroyFleet(secs),
		},
	})
}
