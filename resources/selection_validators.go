package resources

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// The filters and pins are checked by the replicate package's own rules
// (the ones every plan and pull applies), at validate time, on the
// attribute that holds the value.
var (
	_ validator.String = zonePatternValidator{}
	_ validator.String = branchPatternValidator{}
	_ validator.Map    = pinsValidator{}
)

// zonePatternValidator checks one zones/zone_filter entry: an exact zone
// (lowercase, trailing dot) or a glob that can match one.
type zonePatternValidator struct{}

func (v zonePatternValidator) Description(_ context.Context) string {
	return `value must be a lowercase zone name with the trailing dot ("example.com.") or a glob pattern matching such names ("*.example.com.")`
}

func (v zonePatternValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v zonePatternValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := replicate.ValidateZonePattern(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid zone filter", err.Error()+".")
	}
}

// branchPatternValidator checks one branches entry: a branch name (matched
// exactly) or a glob pattern.
type branchPatternValidator struct{}

func (v branchPatternValidator) Description(_ context.Context) string {
	return `value must be a branch name ("main") or a glob pattern ("release-*")`
}

func (v branchPatternValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v branchPatternValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := replicate.ValidateBranchPattern(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid branch filter", err.Error()+".")
	}
}

// pinsValidator checks every pin: a "<zone>/<branch>" key with a valid
// zone and branch, and a commit hash.
type pinsValidator struct{}

func (v pinsValidator) Description(_ context.Context) string {
	return `keys must be "<zone>/<branch>" with the zone's trailing dot ("example.com./main"), values 64 lowercase hex digits`
}

func (v pinsValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v pinsValidator) ValidateMap(_ context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for key, val := range req.ConfigValue.Elements() {
		s, ok := val.(interface {
			IsNull() bool
			IsUnknown() bool
			ValueString() string
		})
		if !ok || s.IsUnknown() {
			continue
		}
		if s.IsNull() {
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(key), "Invalid pin", "A pin needs a commit hash: 64 lowercase hex digits.")
			continue
		}
		h := s.ValueString()
		if err := replicate.ValidatePin(key, h); err != nil {
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(key), "Invalid pin", err.Error()+".")
		} else if lower := strings.ToLower(h); lower != h {
			// refs show hashes in lower case; a pin in upper case would
			// never equal them.
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(key), "Invalid pin",
				fmt.Sprintf("pin %q: commit hashes are written in lower case: use %q.", key, lower))
		}
	}
}
