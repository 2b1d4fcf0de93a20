package resources

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// What zonegit_replica and zonegit_secondary share beyond the selection
// (planSelection, the validators): the last_pull attribute, the
// per-branch failure of a pull, and the timeouts check.

// lastPullAttrTypes is the shape of last_pull.
var lastPullAttrTypes = map[string]attr.Type{
	"objects":     types.Int64Type,
	"bytes":       types.Int64Type,
	"duration_ms": types.Int64Type,
	"primary":     types.StringType,
}

// lastPullValue is a last_pull value.
func lastPullValue(objects, bytes, durationMS int64, primary string) (types.Object, diag.Diagnostics) {
	return types.ObjectValue(lastPullAttrTypes, map[string]attr.Value{
		"objects":     types.Int64Value(objects),
		"bytes":       types.Int64Value(bytes),
		"duration_ms": types.Int64Value(durationMS),
		"primary":     types.StringValue(primary),
	})
}

// branchPullError is the diagnostic of one branch a pull could not apply:
// where names the replica ("replica /var/lib/x", "secondary https://..."),
// left is the hash (or "(absent)") the branch stays at.
func branchPullError(where, primary, zone, name, err, left string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Replica pull failed", fmt.Sprintf(
		"Branch %s of zone %s (%s, primary %s): %s. The branch was left at %s; branches that "+
			"succeeded are applied and recorded in state. Fix the cause and run apply again.",
		replicate.DisplayName(name), replicate.DisplayName(zone), where, primary, err, left))
}

// validateTimeouts refuses timeouts (of the named operations) that are not
// positive: a zero or negative timeout would fail every apply, blaming the
// primary or the daemon.
func validateTimeouts(ctx context.Context, config tfsdk.Config, names ...string) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, name := range names {
		p := path.Root("timeouts").AtName(name)
		var v types.String
		if d := config.GetAttribute(ctx, p, &v); d.HasError() {
			continue // no timeouts block
		}
		if v.IsNull() || v.IsUnknown() {
			continue
		}
		// The timeouts package has checked the syntax.
		if d, err := time.ParseDuration(v.ValueString()); err == nil && d <= 0 {
			diags.AddAttributeError(p, "Invalid timeout",
				fmt.Sprintf("timeouts.%s = %q is not positive. Use a duration greater than zero, such as \"30m\".", name, v.ValueString()))
		}
	}
	return diags
}
