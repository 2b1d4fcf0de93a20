package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

var _ provider.ConfigValidator = retryBoundsValidator{}

// The replication client's default retry delays, for configurations that set
// only one bound.
var (
	defaultRetryMinDelayMs = replicate.ClientOptions{}.WithDefaults().RetryMinDelay.Milliseconds()
	defaultRetryMaxDelayMs = replicate.ClientOptions{}.WithDefaults().RetryMaxDelay.Milliseconds()
)

// retryBoundsValidator checks retry.min_delay_ms <= retry.max_delay_ms.
type retryBoundsValidator struct{}

func (v retryBoundsValidator) Description(_ context.Context) string {
	return "retry.min_delay_ms must not exceed retry.max_delay_ms"
}

func (v retryBoundsValidator) MarkdownDescription(ctx context.Context) string {
	return "`retry.min_delay_ms` must not exceed `retry.max_delay_ms`"
}

func (v retryBoundsValidator) ValidateProvider(ctx context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	var lo, hi types.Int64
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("retry").AtName("min_delay_ms"), &lo)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("retry").AtName("max_delay_ms"), &hi)...)
	if resp.Diagnostics.HasError() || lo.IsUnknown() || hi.IsUnknown() || (lo.IsNull() && hi.IsNull()) {
		return
	}
	// An unset bound takes the client's default.
	loMs, loNote := lo.ValueInt64(), ""
	if lo.IsNull() {
		loMs, loNote = defaultRetryMinDelayMs, ", the default"
	}
	hiMs, hiNote := hi.ValueInt64(), ""
	if hi.IsNull() {
		hiMs, hiNote = defaultRetryMaxDelayMs, ", the default"
	}
	if loMs > hiMs {
		resp.Diagnostics.AddAttributeError(path.Root("retry"), "Invalid retry delays",
			fmt.Sprintf("retry.min_delay_ms (%d%s) is greater than retry.max_delay_ms (%d%s). Lower min_delay_ms or raise max_delay_ms.",
				loMs, loNote, hiMs, hiNote))
	}
}
