package resources

import (
	"context"
	"fmt"
	"path"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

var _ validator.String = globValidator{}

// globValidator checks that a filter entry is a valid path.Match pattern
// (an exact name is a pattern without metacharacters).
type globValidator struct{}

func (v globValidator) Description(_ context.Context) string {
	return "value must be a name or a glob pattern (*, ?, [...])"
}

func (v globValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v globValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if s == "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid filter", "An empty string matches nothing. Remove it, or use \"*\" to match everything.")
		return
	}
	if _, err := path.Match(s, ""); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid filter",
			fmt.Sprintf("%q is not a valid glob pattern (%v). Use an exact name or a pattern with *, ? and [...].", s, err))
	}
}
