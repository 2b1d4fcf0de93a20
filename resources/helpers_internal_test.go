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
	for name, r := range map[string]resource.Resource{
		"zonegit_replica": NewReplicaResource(), "zonegit_secondary": NewSecondaryResource(),
	} {
		var rs resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &rs)
		if diags := rs.Schema.ValidateImplementation(ctx); diags.HasError() {
			t.Fatalf("%s schema: %v", name, diags)
		}
		for attr, a := range rs.Schema.Attributes {
			if a.GetMarkdownDescription() == "" {
				t.Errorf("%s.%s has no MarkdownDescription", name, attr)
			}
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

// TestPlanRefsDiagnostics: planRefs turns replicate.PlanRefs' findings
// into diagnostics (the planning itself is tested with PlanRefs in
// replicate): a hostile name advertised by the primary is an error naming it.
func TestPlanRefsDiagnostics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	newLocalRepo(t, dir, "example.com.")
	bad := &replicate.RefsResponse{Branches: []replicate.Branch{{Zone: "example.com.", Name: "../x", Hash: strings.Repeat("1", 64)}}}
	opts := replicate.ClientOptions{PrimaryURL: "http://primary"}
	if _, diags := planRefs(context.Background(), opts, bad, dir, replicate.PullOptions{}); !diags.HasError() ||
		!strings.Contains(diags.Errors()[0].Detail(), `"../x"`) {
		t.Errorf("hostile branch name: %v", diags)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	refs := &replicate.RefsResponse{
		Zones:    []string{"example.com."},
		Branches: []replicate.Branch{{Zone: "example.com.", Name: "main", Hash: strings.Repeat("a", 64)}},
	}
	p := fakePrivate{privateKeyPrimaryRefs: encodeSnapshot("http://a", refs)}
	got := loadSnapshot(context.Background(), p, "http://a")
	if got == nil || len(got.Branches) != 1 || got.Branches[0] != refs.Branches[0] {
		t.Errorf("round trip: %+v", got)
	}
	if loadSnapshot(context.Background(), p, "http://b") != nil {
		t.Error("a snapshot of another primary was used")
	}
	if loadSnapshot(context.Background(), fakePrivate{}, "http://a") != nil {
		t.Error("no snapshot: got one")
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
