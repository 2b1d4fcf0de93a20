package resources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func TestSchemas(t *testing.T) {
	ctx := context.Background()
	var rs resource.SchemaResponse
	NewReplicaResource().Schema(ctx, resource.SchemaRequest{}, &rs)
	if diags := rs.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatalf("zonegit_replica schema: %v", diags)
	}
	for name, a := range rs.Schema.Attributes {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("zonegit_replica.%s has no MarkdownDescription", name)
		}
	}
	var ds datasource.SchemaResponse
	NewRefsDataSource().Schema(ctx, datasource.SchemaRequest{}, &ds)
	if diags := ds.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatalf("zonegit_refs schema: %v", diags)
	}
	for name, a := range ds.Schema.Attributes {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("zonegit_refs.%s has no MarkdownDescription", name)
		}
	}
}

func TestCheckPrimaryURL(t *testing.T) {
	for _, tc := range []struct {
		url, wantErr string
	}{
		{"http://127.0.0.1:9354", ""},
		{"https://primary.example", ""},
		{"https://primary.example/zonegit/", ""},
		{"ftp://primary.example", `scheme "ftp"`},
		{"primary.example:9354", "scheme"},
		{"http://", "no host"},
		{"https://primary.example/?a=b", "query or fragment"},
		{"http://[::1", "not a URL"},
	} {
		err := CheckPrimaryURL(tc.url)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.url, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one containing %q", tc.url, err, tc.wantErr)
		}
	}
}

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

// newLocalRepo builds a repository with the given zones' main branches and
// returns their commit hashes.
func newLocalRepo(t *testing.T, dir string, zones ...string) map[string]string {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]string{}
	for _, z := range zones {
		res, err := r.Import(context.Background(), repo.ImportOptions{
			Zone:   z,
			Source: strings.NewReader("$ORIGIN " + z + "\n@ 300 IN SOA ns. host. 1 7200 3600 1209600 300\n"),
		})
		if err != nil {
			t.Fatal(err)
		}
		out[z+"/main"] = res.Commit.String()
	}
	return out
}

func TestReadLocalRefs(t *testing.T) {
	base := t.TempDir()
	if refs, exists, err := readLocalRefs(filepath.Join(base, "absent")); exists || err != nil || refs != nil {
		t.Errorf("absent: %v %v %v, want not existing", refs, exists, err)
	}
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if refs, exists, err := readLocalRefs(empty); !exists || err != nil || len(refs) != 0 {
		t.Errorf("empty dir: %v %v %v, want an existing repository without branches", refs, exists, err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readLocalRefs(file); !errors.Is(err, repo.ErrNotRepository) {
		t.Errorf("a file: %v, want ErrNotRepository", err)
	}
	other := filepath.Join(base, "other")
	if err := os.MkdirAll(filepath.Join(other, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, exists, err := readLocalRefs(other); !exists || !errors.Is(err, repo.ErrNotRepository) || !strings.Contains(err.Error(), `"sub"`) {
		t.Errorf("a directory of other things: %v %v, want ErrNotRepository naming sub", exists, err)
	}
	full := filepath.Join(base, "full")
	want := newLocalRepo(t, full, "example.com.", "example.org.")
	refs, exists, err := readLocalRefs(full)
	if !exists || err != nil {
		t.Fatalf("repository: %v %v", exists, err)
	}
	if got := refsMap(refs); len(got) != 2 || got["example.com./main"] != want["example.com./main"] || got["example.org./main"] != want["example.org./main"] {
		t.Errorf("refs = %v, want %v", got, want)
	}
}

// TestPlanRefs: the planned refs are the local branches with the selected
// primary tips, pins and prunes applied.
func TestPlanRefs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	local := newLocalRepo(t, dir, "example.com.", "gone.example.")
	h := func(c string) string { return strings.Repeat(c, 64) }
	primary := &replicate.RefsResponse{
		Zones: []string{"example.com.", "example.org."},
		Branches: []replicate.Branch{
			{Zone: "example.com.", Name: "main", Hash: h("1")},
			{Zone: "example.com.", Name: "dev", Hash: h("2")},
			{Zone: "example.org.", Name: "main", Hash: h("3")},
		},
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		sel  replicate.PullOptions
		want map[string]string
	}{
		{"all", replicate.PullOptions{}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"),
			"gone.example./main": local["gone.example./main"],
		}},
		{"prune", replicate.PullOptions{Prune: true}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"),
		}},
		// Without prune a branch outside the selection stays as it is.
		{"filters", replicate.PullOptions{Zones: []string{"example.com."}, Branches: []string{"main"}}, map[string]string{
			"example.com./main": h("1"), "gone.example./main": local["gone.example./main"],
		}},
		// With prune the replica holds exactly its selection.
		{"filters and prune", replicate.PullOptions{Zones: []string{"example.com."}, Branches: []string{"main"}, Prune: true}, map[string]string{
			"example.com./main": h("1"),
		}},
		{"pin", replicate.PullOptions{Zones: []string{"example.org."}, Pins: map[string]string{"example.com./main": h("9")}}, map[string]string{
			"example.com./main": h("9"), "example.org./main": h("3"), "gone.example./main": local["gone.example./main"],
		}},
		{"pin and prune", replicate.PullOptions{Zones: []string{"example.org."}, Pins: map[string]string{"gone.example./main": h("9")}, Prune: true}, map[string]string{
			"gone.example./main": h("9"), "example.org./main": h("3"),
		}},
	} {
		got, current, diags := planRefs(ctx, primary, "http://primary", dir, tc.sel)
		if diags.HasError() {
			t.Fatalf("%s: %v", tc.name, diags)
		}
		if len(current) != len(local) || current["example.com./main"] != local["example.com./main"] {
			t.Errorf("%s: current refs %v, want %v", tc.name, current, local)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %s, want %s", tc.name, k, got[k], v)
			}
		}
	}

	// A hostile name advertised by the primary is an error naming it.
	bad := &replicate.RefsResponse{Branches: []replicate.Branch{{Zone: "example.com.", Name: "../x", Hash: h("1")}}}
	if _, _, diags := planRefs(ctx, bad, "http://primary", dir, replicate.PullOptions{}); !diags.HasError() ||
		!strings.Contains(diags.Errors()[0].Detail(), `"../x"`) {
		t.Errorf("hostile branch name: %v", diags)
	}
}

func TestRefsRecordRoundTrip(t *testing.T) {
	refs := &replicate.RefsResponse{
		Zones:    []string{"example.com."},
		Branches: []replicate.Branch{{Zone: "example.com.", Name: "main", Hash: strings.Repeat("a", 64)}},
	}
	p := fakePrivate{privateKeyPrimaryRefs: encodeRefsRecord("http://a", refs)}
	got := loadRefsRecord(context.Background(), p, "http://a")
	if got == nil || len(got.Branches) != 1 || got.Branches[0] != refs.Branches[0] {
		t.Errorf("round trip: %+v", got)
	}
	if loadRefsRecord(context.Background(), p, "http://b") != nil {
		t.Error("a record of another primary was used")
	}
	if loadRefsRecord(context.Background(), fakePrivate{}, "http://a") != nil {
		t.Error("no record: got one")
	}
}

type fakePrivate map[string][]byte

func (f fakePrivate) GetKey(_ context.Context, key string) ([]byte, diag.Diagnostics) {
	return f[key], nil
}

func TestRefsDiff(t *testing.T) {
	want := map[string]string{"a./main": strings.Repeat("1", 64), "b./main": strings.Repeat("2", 64)}
	got := map[string]string{"a./main": strings.Repeat("1", 64), "c./main": strings.Repeat("3", 64)}
	d := refsDiff(want, got)
	if d != "b./main: planned 222222222222, got (absent); c./main: planned (absent), got 333333333333" {
		t.Errorf("refsDiff = %q", d)
	}
}

func TestLogFields(t *testing.T) {
	f := fields([]interface{}{"url", "http://x", "attempt", 2, 7, "odd", "dangling"})
	if f["url"] != "http://x" || f["attempt"] != 2 || f["arg4"] != "odd" || f["dangling"] != "(missing value)" {
		t.Errorf("fields = %v", f)
	}
	if fields(nil) != nil {
		t.Error("no fields: want nil")
	}
}
