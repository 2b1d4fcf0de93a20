package replicate

import (
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// TestSelectionMetacharacters: every glob metacharacter (* ? [ ] \) in an
// exact branch name selects that branch, and the same characters in a
// pattern work as globs; Plan, Selects and the filters agree.
func TestSelectionMetacharacters(t *testing.T) {
	names := []string{"main", "rel[1]", "rel1", "a*b", "axb", "q?", "qx", `back\slash`, "backslash", "x[", "x]", "[", "]", "*", "?", `\`}
	for _, n := range names {
		if err := repo.ValidateBranch(n); err != nil {
			t.Fatalf("test name %q is not a valid branch name: %v", n, err)
		}
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		// Exact names: always themselves, plus what they match as globs.
		{"rel[1]", []string{"rel1", "rel[1]"}},
		{"a*b", []string{"a*b", "axb"}},
		{"q?", []string{"q?", "qx"}},
		{`back\slash`, []string{`back\slash`, "backslash"}},
		{"x[", []string{"x["}}, // not a valid glob: exact only
		{"x]", []string{"x]"}},
		{"[", []string{"["}},
		{"]", []string{"]"}},
		{`\`, []string{`\`}},
		// Escaped: the one name, whatever it holds.
		{`rel\[1\]`, []string{"rel[1]"}},
		{`a\*b`, []string{"a*b"}},
		{`q\?`, []string{"q?"}},
		{`back\\slash`, []string{`back\slash`}},
		{`\*`, []string{"*"}},
		// Patterns.
		{"rel[0-9]", []string{"rel1"}},
		{"rel[[]*", []string{"rel[1]"}},
		{`[\]]`, []string{"]"}},
		{"[]]", nil}, // not a valid glob in Go: the exact name "[]]" only
		{"*", names},
		{"?", []string{"*", "?", "[", `\`, "]"}},
		{"[^a-z]", []string{"*", "?", "[", `\`, "]"}},
	} {
		if err := ValidateBranchPattern(tc.filter); err != nil {
			t.Errorf("filter %q refused: %v", tc.filter, err)
			continue
		}
		sel := Selection{Branches: []string{tc.filter}}
		var got []string
		var primary RefsResponse
		for i, n := range names {
			if sel.Selects("example.com.", n) {
				got = append(got, n)
			}
			primary.Branches = append(primary.Branches, Branch{Zone: "example.com.", Name: n, Hash: hashN(i)})
		}
		want := append([]string(nil), tc.want...)
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("filter %q selects %q, want %q", tc.filter, got, want)
		}
		// Plan selects the same branches.
		p, err := Plan(&primary, nil, PullOptions{Branches: []string{tc.filter}})
		if err != nil {
			t.Fatalf("plan with %q: %v", tc.filter, err)
		}
		var planned []string
		for _, tg := range p.Targets {
			planned = append(planned, tg.Name)
		}
		sort.Strings(planned)
		if strings.Join(planned, " ") != strings.Join(want, " ") {
			t.Errorf("plan with filter %q targets %q, want %q", tc.filter, planned, want)
		}
	}
}

// TestQuoteName: the quoted form of any name, used as a filter, selects
// that name and no other of a set holding every metacharacter.
func TestQuoteName(t *testing.T) {
	names := []string{"main", "rel[1]", "rel1", "a*b", "axb", "q?", "qx", `back\slash`, "backslash", "x[", "x]", "*", "?", `\`, "[]"}
	for _, n := range names {
		q := QuoteName(n)
		if err := ValidateBranchPattern(q); err != nil {
			t.Errorf("QuoteName(%q) = %q refused: %v", n, q, err)
		}
		if ok, err := path.Match(q, n); !ok || err != nil {
			t.Errorf("QuoteName(%q) = %q does not glob-match it: %v", n, q, err)
		}
		for _, other := range names {
			if other != n && (Selection{Branches: []string{q}}).Selects("z.", other) {
				t.Errorf("QuoteName(%q) = %q also selects %q", n, q, other)
			}
		}
	}
	if QuoteName("main") != "main" {
		t.Errorf("a plain name must stay as it is: %q", QuoteName("main"))
	}
}

func hashN(i int) string {
	h := repo.HashObject(repo.KindBlob, []byte{byte(i)})
	return h.String()
}

func TestValidateZonePattern(t *testing.T) {
	for p, want := range map[string]string{
		"example.com.":      "",
		"*.example.com.":    "",
		"*":                 "",
		"example.*":         "",
		"ex?mple.com.":      "",
		"[a-z]*.example.":   "",
		`example\.com.`:     "",
		"example.com":       `use "example.com."`,
		"EXAMPLE.COM.":      `use "example.com."`,
		"Example.com":       `use "example.com."`,
		"*.example.com":     `use "*.example.com."`,
		"*.Example.com.":    `use "*.example.com."`,
		"":                  "empty",
		"[":                 "not a valid glob",
		"exa mple.*":        "cannot occur",
		"example.com./main": "",
	} {
		err := ValidateZonePattern(p)
		switch {
		case p == "example.com./main":
			if err == nil {
				t.Errorf("%q (a pin key) accepted as a zone", p)
			}
		case want == "" && err != nil:
			t.Errorf("%q: %v", p, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "")):
			t.Errorf("%q: %v, want an error containing %q", p, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %q does not name the value", p, err)
		}
	}
}

// TestSelectionPinsAndUnselected: pins select their branch whatever the
// filters say; Unselected lists the local branches neither filters nor
// pins select; tags follow the zone filter alone.
func TestSelectionPinsAndUnselected(t *testing.T) {
	h := strings.Repeat("ab", 32)
	sel := Selection{
		Zones:    []string{"*.example.com.", "example.org."},
		Branches: []string{"main", "release-*"},
		Pins:     map[string]string{"other.net./dev": h},
	}
	for key, want := range map[string]bool{
		"a.example.com./main":      true,
		"a.example.com./release-1": true,
		"a.example.com./dev":       false,
		"example.org./main":        true,
		"example.com./main":        false, // "*.example.com." needs a label before
		"other.net./dev":           true,  // pinned wins over filters
		"other.net./main":          false,
	} {
		zone, name, _ := repo.SplitRefPath(key)
		if got := sel.Selects(zone, name); got != want {
			t.Errorf("Selects(%q) = %v, want %v", key, got, want)
		}
	}
	if !(Selection{}).Selects("any.zone.", "any") {
		t.Error("an empty selection must select everything")
	}
	local := []repo.Ref{
		{Zone: "a.example.com.", Name: "main"}, {Zone: "a.example.com.", Name: "dev"},
		{Zone: "other.net.", Name: "dev"}, {Zone: "other.net.", Name: "main"},
	}
	var un []string
	for _, r := range sel.Unselected(local) {
		un = append(un, r.Zone+"/"+r.Name)
	}
	if strings.Join(un, " ") != "a.example.com./dev other.net./main" {
		t.Errorf("Unselected = %v", un)
	}
	if !sel.Zone("x.example.com.") || sel.Zone("other.net.") {
		t.Error("Zone must follow the zone filter alone")
	}
	if _, err := Plan(nil, nil, PullOptions{Zones: sel.Zones, Branches: sel.Branches, Pins: sel.Pins}); err != nil {
		t.Errorf("Plan refused a valid selection: %v", err)
	}
	for _, bad := range []PullOptions{
		{Zones: []string{"example.com"}},
		{Branches: []string{"a/b"}},
		{Pins: map[string]string{"example.com/main": h}},
	} {
		if _, err := Plan(nil, nil, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
