package resources

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestGlobValidator(t *testing.T) {
	for s, ok := range map[string]bool{"example.com.": true, "*.example.com.": true, "release-[0-9]*": true, "[": false, "": false} {
		resp := &validator.StringResponse{}
		globValidator{}.ValidateString(context.Background(), validator.StringRequest{
			Path: path.Root("zones").AtListIndex(0), ConfigValue: types.StringValue(s),
		}, resp)
		if resp.Diagnostics.HasError() == ok {
			t.Errorf("%q: diagnostics %v, want ok=%v", s, resp.Diagnostics, ok)
		}
	}
}

func TestSelectionSelects(t *testing.T) {
	sel := selection{
		Zones:    []string{"*.example.com.", "example.org."},
		Branches: []string{"main", "release-*"},
		Pins:     map[string]string{"other.net./dev": strings.Repeat("a", 64)},
	}
	for key, want := range map[string]bool{
		"a.example.com./main":      true,
		"a.example.com./release-1": true,
		"a.example.com./dev":       false,
		"example.org./main":        true,
		"example.com./main":        false, // "*.example.com." needs a label before
		"other.net./dev":           true,  // pinned wins over filters
		"other.net./main":          false,
		"garbage":                  false,
	} {
		if got := sel.selects(key); got != want {
			t.Errorf("selects(%q) = %v, want %v", key, got, want)
		}
	}
	if !(selection{}).selects("any.zone./any") {
		t.Error("an empty selection must select everything")
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
	if _, _, err := readLocalRefs(file); err == nil {
		t.Error("a file: no error")
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
		sel  selection
		want map[string]string
	}{
		{"all", selection{}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"),
			"gone.example./main": local["gone.example./main"],
		}},
		{"prune", selection{Prune: true}, map[string]string{
			"example.com./main": h("1"), "example.com./dev": h("2"), "example.org./main": h("3"),
		}},
		{"filters", selection{Zones: []string{"example.com."}, Branches: []string{"main"}, Prune: true}, map[string]string{
			"example.com./main": h("1"), "gone.example./main": local["gone.example./main"],
		}},
		{"pin", selection{Zones: []string{"example.org."}, Pins: map[string]string{"example.com./main": h("9")}}, map[string]string{
			"example.com./main": h("9"), "example.org./main": h("3"), "gone.example./main": local["gone.example./main"],
		}},
	} {
		got, diags := planRefs(ctx, primary, "http://primary", dir, tc.sel)
		if diags.HasError() {
			t.Fatalf("%s: %v", tc.name, diags)
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
	if _, diags := planRefs(ctx, bad, "http://primary", dir, selection{}); !diags.HasError() ||
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
