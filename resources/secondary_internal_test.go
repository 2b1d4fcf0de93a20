package resources

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// TestSecondaryControlError: each answer of the control API becomes the
// diagnostic that says what to fix, on the attribute to fix, naming the
// daemon.
func TestSecondaryControlError(t *testing.T) {
	const url = "https://ns1.example:9355"
	r := &SecondaryResource{data: &ProviderData{SecondaryTokenFrom: "the file /run/t (from ZONEGIT_SECONDARY_TOKEN_FILE)"}}
	m := &secondaryResourceModel{URL: types.StringValue(url), ControlToken: types.StringNull()}
	ce := func(status int, msg string) error {
		return &secondary.ControlError{URL: url + secondary.ControlPath + "/plan", Status: status, Message: msg}
	}
	for _, tc := range []struct {
		err     error
		summary string
		path    path.Path // empty: no attribute
		detail  string
	}{
		{errors.New("POST " + url + "/control/v1/plan: secondary daemon unreachable: connection refused"),
			"Cannot reach secondary daemon", path.Empty(), "connection refused"},
		{ce(http.StatusUnauthorized, "bad token"), "Secondary daemon refused the control token", path.Root("control_token"),
			"ZONEGIT_SECONDARY_TOKEN_FILE"},
		{ce(http.StatusConflict, "the daemon was started without --follow"), "Secondary daemon cannot follow", path.Root("follow"), "--follow"},
		{ce(http.StatusUnprocessableEntity, `pin "example.com./main" = abab...: not on the primary`), "Pinned commit not on the primary",
			path.Root("pins"), "example.com./main"},
		{ce(http.StatusBadRequest, `zones: "Example.com"`), "Secondary daemon refused the desired state", path.Empty(), "Example.com"},
		{ce(http.StatusBadGateway, "primary https://primary.example:9354 unreachable"), "Secondary daemon cannot reach its primary",
			path.Empty(), "https://primary.example:9354"},
		{ce(http.StatusInternalServerError, "cannot write the desired state: state file /s.json: no space left on device"),
			"Secondary daemon failed", path.Empty(), "no space left"},
		{ce(http.StatusServiceUnavailable, "secondary busy"), "Secondary daemon busy", path.Empty(), "secondary busy"},
		{ce(http.StatusRequestEntityTooLarge, "request body larger than 1048576 bytes"), "Desired state too large for the secondary daemon",
			path.Empty(), "larger than"},
		{fmt.Errorf("GET %s/control/v1/status: %w: the server answered 200 (text/plain)", url, secondary.ErrNotDaemon),
			"Not a secondary daemon", path.Root("url"), "text/plain"},
		{ce(http.StatusTeapot, "odd"), "Secondary daemon request failed", path.Empty(), "odd"},
	} {
		d := r.controlError(m, "Planning", tc.err)
		if d.Summary() != tc.summary || !strings.Contains(d.Detail(), url) || !strings.Contains(d.Detail(), tc.detail) {
			t.Errorf("%v: %q / %q, want %q naming %s and %q", tc.err, d.Summary(), d.Detail(), tc.summary, url, tc.detail)
		}
		var got path.Path
		if dp, ok := d.(diag.DiagnosticWithPath); ok {
			got = dp.Path()
		}
		if got.String() != tc.path.String() {
			t.Errorf("%v: on %q, want %q", tc.err, got, tc.path)
		}
	}
}

func TestRefsList(t *testing.T) {
	h := strings.Repeat("ab", 32)
	refs, err := refsList(map[string]string{"example.com./main": h, "example.org./rel-1": h})
	if err != nil || len(refs) != 2 || refs[0].Zone != "example.com." || refs[0].Name != "main" || refs[1].Name != "rel-1" || refs[0].Hash.String() != h {
		t.Errorf("refsList = %+v, %v", refs, err)
	}
	if _, err := refsList(map[string]string{"nozone": h}); err == nil || !strings.Contains(err.Error(), `"nozone"`) {
		t.Errorf("a key without a zone: %v", err)
	}
	if _, err := refsList(map[string]string{"example.com./main": "xyz"}); err == nil || !strings.Contains(err.Error(), "example.com./main") {
		t.Errorf("a bad hash: %v", err)
	}
}

// TestReadDesired: refresh writes the daemon's desired state into the
// attributes, keeping an empty list or map the configuration wrote (the
// daemon says nothing for those), so they show no change.
func TestReadDesired(t *testing.T) {
	ctx := context.Background()
	h := strings.Repeat("cd", 32)
	emptyMap := types.MapValueMust(types.StringType, map[string]attr.Value{})
	m := secondaryResourceModel{
		Zones:    types.ListValueMust(types.StringType, []attr.Value{types.StringValue("old.example.")}),
		Branches: types.ListNull(types.StringType),
		Pins:     emptyMap,
	}
	st := &secondary.Status{
		Refs:    map[string]string{"example.com./main": h},
		Desired: &secondary.Desired{Branches: []string{"main"}, Prune: true, Follow: true},
	}
	if d := m.readDesired(ctx, st); d.HasError() {
		t.Fatal(d)
	}
	if !m.Zones.IsNull() {
		t.Errorf("zones = %v, want null (the daemon selects every zone)", m.Zones)
	}
	if len(m.Branches.Elements()) != 1 || m.Branches.Elements()[0].(types.String).ValueString() != "main" {
		t.Errorf("branches = %v", m.Branches)
	}
	if !m.Pins.Equal(emptyMap) {
		t.Errorf("pins = %v, want the configuration's empty map kept", m.Pins)
	}
	if !m.Prune.ValueBool() || !m.Follow.ValueBool() {
		t.Errorf("prune %v follow %v, want both true", m.Prune, m.Follow)
	}
	if v, ok := m.Refs.Elements()["example.com./main"]; !ok || v.(types.String).ValueString() != h {
		t.Errorf("refs = %v", m.Refs)
	}
	st.Desired.Pins = map[string]string{"example.com./main": h}
	if d := m.readDesired(ctx, st); d.HasError() || len(m.Pins.Elements()) != 1 {
		t.Errorf("pins after the daemon got one: %v %v", m.Pins, d)
	}
}
