package resources

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// TestSelectionValidators: zone and branch filters and pins are checked at
// validate time with the replicate package's rules, on the attribute's path.
func TestSelectionValidators(t *testing.T) {
	ctx := context.Background()
	check := func(v validator.String, s string) diag.Diagnostics {
		resp := &validator.StringResponse{}
		v.ValidateString(ctx, validator.StringRequest{Path: path.Root("zones").AtListIndex(2), ConfigValue: types.StringValue(s)}, resp)
		return resp.Diagnostics
	}
	for s, want := range map[string]string{
		"example.com.":    "",
		"*.example.com.":  "",
		"*":               "",
		"example.com":     `use "example.com."`,
		"Example.COM.":    `use "example.com."`,
		"*.example.com":   `use "*.example.com."`,
		"[":               "not a valid glob",
		"":                "empty",
		"exa mple.com.":   "has character ' '",
		"exa mple.*":      "cannot occur in a zone name",
		"*.Example.com.":  `use "*.example.com."`,
		"example.[a-z]m.": "",
	} {
		d := check(zonePatternValidator{}, s)
		if want == "" {
			if d.HasError() {
				t.Errorf("zone %q: %v", s, d)
			}
			continue
		}
		if !d.HasError() || !strings.Contains(d.Errors()[0].Detail(), want) {
			t.Errorf("zone %q: %v, want an error containing %q", s, d, want)
			continue
		}
		if p := d.Errors()[0].(diag.DiagnosticWithPath).Path(); !p.Equal(path.Root("zones").AtListIndex(2)) {
			t.Errorf("zone %q: error on %s, want zones[2]", s, p)
		}
	}
	for s, ok := range map[string]bool{
		"main": true, "release-[0-9]*": true, "rel[1]": true, "x[": true, `a\`: true, "*": true,
		"a/b": false, "": false, "has space": false,
	} {
		if d := check(branchPatternValidator{}, s); d.HasError() == ok {
			t.Errorf("branch %q: %v, want ok=%v", s, d, ok)
		}
	}
	h := strings.Repeat("ab", 32)
	for key, tc := range map[string]struct {
		hash, want string
	}{
		"example.com./main": {h, ""},
		"example.com/main":  {h, `use "example.com./main"`},
		"EXAMPLE.com./main": {h, "lowercase"},
		"example.com./a b":  {h, "control or space"},
		"example.com./dev":  {strings.ToUpper(h), "lower case"},
		"example.com./zero": {strings.Repeat("0", 64), "zero hash"},
		"example.com./bad":  {"xyz", "64 hex"},
	} {
		resp := &validator.MapResponse{}
		m := types.MapValueMust(types.StringType, map[string]attr.Value{key: types.StringValue(tc.hash)})
		pinsValidator{}.ValidateMap(ctx, validator.MapRequest{Path: path.Root("pins"), ConfigValue: m}, resp)
		d := resp.Diagnostics
		if tc.want == "" {
			if d.HasError() {
				t.Errorf("pin %q: %v", key, d)
			}
			continue
		}
		if !d.HasError() || !strings.Contains(d.Errors()[0].Detail(), tc.want) {
			t.Errorf("pin %q = %q: %v, want an error containing %q", key, tc.hash, d, tc.want)
			continue
		}
		if p := d.Errors()[0].(diag.DiagnosticWithPath).Path(); !p.Equal(path.Root("pins").AtMapKey(key)) {
			t.Errorf("pin %q: error on %s, want pins[%q]", key, p, key)
		}
	}
}
