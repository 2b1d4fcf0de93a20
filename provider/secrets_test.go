package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// The secrets TestAccProvider_secretsNotStored passes to the provider.
const (
	secretToken  = "tok-3a9f1c7e-never-stored"
	secretAPIKey = "key-81d2b6f0-never-stored"
)

// secretsCheck fails unless each secret's presence in the JSON of v is as
// wanted.
func secretsCheck(what string, v any, want bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	for _, s := range []string{secretToken, secretAPIKey} {
		if got := strings.Contains(string(b), s); got != want {
			return fmt.Errorf("%s: contains %q = %v, want %v", what, s, got, want)
		}
	}
	return nil
}

type planSecrets bool

func (want planSecrets) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	resp.Error = secretsCheck("plan", req.Plan, bool(want))
}

type stateSecrets bool

func (want stateSecrets) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	resp.Error = secretsCheck("state", req.State, bool(want))
}

// TestAccProvider_secretsNotStored (issue 12.3): the token and header
// values reach the primary but are stored neither in state nor in a saved
// plan when they come from ephemeral variables (Terraform >= 1.10,
// OpenTofu >= 1.11). Provider settings are never written to state; a plan
// file records the values of the variables it was made with, sensitive
// ones included, and that is what ephemeral variables prevent. The
// control step shows the checks would see a stored secret.
func TestAccProvider_secretsNotStored(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{Token: secretToken, Header: "X-Api-Key: " + secretAPIKey})
	dir := filepath.Join(t.TempDir(), "replica")
	t.Setenv("TF_VAR_token", secretToken)
	t.Setenv("TF_VAR_api_key", secretAPIKey)
	config := func(ephemeral bool, extra string) string {
		return fmt.Sprintf(`
variable "token" {
  type      = string
  sensitive = true
  ephemeral = %[1]t
}

variable "api_key" {
  type      = string
  sensitive = true
  ephemeral = %[1]t
}

provider "zonegit" {
  primary_url = %[2]q
  token       = var.token
  headers     = { "X-Api-Key" = var.api_key }
}

resource "zonegit_replica" "test" {
  path = %[3]q
}

data "zonegit_refs" "test" {}
%[4]s
`, ephemeral, p.URL, dir, extra)
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(true, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{planSecrets(false)},
				},
				ConfigStateChecks: []statecheck.StateCheck{stateSecrets(false)},
				Check: func(*terraform.State) error {
					if p.served.Load() == 0 || p.refused.Load() != 0 {
						return fmt.Errorf("primary served %d requests and refused %d; want some served, none refused",
							p.served.Load(), p.refused.Load())
					}
					return nil
				},
			},
			// Control: plain sensitive variables are recorded in the plan,
			// and a sensitive output in state; the same checks see them.
			{
				Config: config(false, "output \"leak\" {\n  value     = \"${var.token} ${var.api_key}\"\n  sensitive = true\n}\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{planSecrets(true)},
				},
				ConfigStateChecks: []statecheck.StateCheck{stateSecrets(true)},
			},
		},
	})
}
