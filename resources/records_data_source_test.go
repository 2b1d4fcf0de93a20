package resources_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/miekg/dns"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

const recordsZone = "example.com."

// exampleZone is the golden-vector zone (example.com.), and exampleZoneV2
// the same with one RRset added (new A), one removed (ftp CNAME) and two
// changed (the SOA serial, www A).
func exampleZone(t *testing.T) (v1, v2 string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "vectors", "zones", "example.zone"))
	if err != nil {
		t.Fatalf("golden vector example.zone is missing: %v", err)
	}
	v1 = string(b)
	v2 = v1
	for _, r := range [][2]string{
		{"2024060101 ; serial", "2024060102 ; serial"},
		{"www       300   IN  A     192.0.2.10", "www       300   IN  A     192.0.2.11"},
		{"ftp             IN  CNAME www\n", ""},
		{"a.b.c           IN  A     192.0.2.100\n", "a.b.c           IN  A     192.0.2.100\nnew             IN  A     192.0.2.77\n"},
	} {
		if !strings.Contains(v2, r[0]) {
			t.Fatalf("example.zone no longer has %q", r[0])
		}
		v2 = strings.Replace(v2, r[0], r[1], 1)
	}
	return v1, v2
}

// importZone commits text as zone's content on branch of r.
func importZone(t *testing.T, r *repo.Repo, zone, branch, text string) string {
	t.Helper()
	res, err := r.Import(context.Background(), repo.ImportOptions{
		Zone: zone, Branch: branch, Source: strings.NewReader(text), SourceName: "test.zone",
	})
	if err != nil {
		t.Fatalf("import %s on %s: %v", zone, branch, err)
	}
	return res.Commit.String()
}

// zoneSets parses master-file text with miekg/dns into "<name> <type>" =>
// sorted record texts (TTL and class included), owners lowercased and each
// RRset at its lowest TTL, as an import stores it.
func zoneSets(text string) (map[string][]string, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	sets := map[string][]dns.RR{}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		key := h.Name + " " + dns.Type(h.Rrtype).String()
		sets[key] = append(sets[key], rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for key, rrs := range sets {
		low := rrs[0].Header().Ttl
		for _, rr := range rrs {
			low = min(low, rr.Header().Ttl)
		}
		for _, rr := range rrs {
			rr.Header().Ttl = low
			// Text through wire form, so that spellings of the same data
			// (hex case, relative names) compare equal.
			buf := make([]byte, 1<<16)
			n, err := dns.PackRR(rr, buf, 0, nil, false)
			if err != nil {
				return nil, err
			}
			back, _, err := dns.UnpackRR(buf[:n], 0)
			if err != nil {
				return nil, err
			}
			out[key] = append(out[key], back.String())
		}
		slices.Sort(out[key])
	}
	return out, nil
}

// zoneFileIs checks that a zone_file attribute parses to the same records
// as want (a master file with $ORIGIN).
func zoneFileIs(want string) func(string) error {
	return func(got string) error {
		g, err := zoneSets(got)
		if err != nil {
			return fmt.Errorf("zone_file does not parse: %v\n%s", err, got)
		}
		w, err := zoneSets(want)
		if err != nil {
			return err
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			return fmt.Errorf("zone_file has records\n%v\nwant\n%v", g, w)
		}
		return nil
	}
}

func record(name, typ string, ttl int64, rdata ...string) knownvalue.Check {
	rd := make([]knownvalue.Check, len(rdata))
	for i, r := range rdata {
		rd[i] = knownvalue.StringExact(r)
	}
	return knownvalue.ObjectExact(map[string]knownvalue.Check{
		"name":  knownvalue.StringExact(name),
		"type":  knownvalue.StringExact(typ),
		"ttl":   knownvalue.Int64Exact(ttl),
		"rdata": knownvalue.ListExact(rd),
	})
}

func stringList(vs ...string) knownvalue.Check {
	c := make([]knownvalue.Check, len(vs))
	for i, v := range vs {
		c[i] = knownvalue.StringExact(v)
	}
	return knownvalue.ListExact(c)
}

// TestAccRecords_primary: records from a primary by branch, tag and commit
// hash; names and types filters; zone_file re-parses to the imported
// records; diff_from lists added, removed and changed RRsets.
func TestAccRecords_primary(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	v1, v2 := exampleZone(t)
	h1 := importZone(t, p.repo, recordsZone, "main", v1)
	p.tag(recordsZone, "v1", h1)
	h2 := importZone(t, p.repo, recordsZone, "main", v2)
	// Another zone's history, which no read here needs.
	p.commit("example.org.", "main")

	config := fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
}

data "zonegit_records" "branch" {
  zone = %[2]q
  ref  = "main"
}

data "zonegit_records" "tag" {
  zone = %[2]q
  ref  = "v1"
}

data "zonegit_records" "hash" {
  zone = %[2]q
  ref  = %[3]q
}

data "zonegit_records" "filtered" {
  zone  = %[2]q
  ref   = "main"
  names = ["WWW.example.com.", "example.com.", "d.a.b.c.example.com."]
  types = ["a", "MX", "aaaa"]
}

data "zonegit_records" "diff" {
  zone      = %[2]q
  ref       = "main"
  diff_from = "v1"
}

output "www" {
  value = [for r in data.zonegit_records.branch.records : r.rdata if r.name == "www.example.com." && r.type == "A"][0]
}
`, p.URL, recordsZone, h1)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.zonegit_records.branch", tfjsonpath.New("commit"), knownvalue.StringExact(h2)),
				statecheck.ExpectKnownValue("data.zonegit_records.tag", tfjsonpath.New("commit"), knownvalue.StringExact(h1)),
				statecheck.ExpectKnownValue("data.zonegit_records.hash", tfjsonpath.New("commit"), knownvalue.StringExact(h1)),
				statecheck.ExpectKnownValue("data.zonegit_records.branch", tfjsonpath.New("records"), knownvalue.ListSizeExact(17)),
				statecheck.ExpectKnownValue("data.zonegit_records.branch", tfjsonpath.New("records").AtSliceIndex(0),
					record("example.com.", "A", 3600, "192.0.2.1")),
				statecheck.ExpectKnownValue("data.zonegit_records.branch", tfjsonpath.New("diff_from_commit"), knownvalue.Null()),
				statecheck.ExpectKnownValue("data.zonegit_records.branch", tfjsonpath.New("added"), knownvalue.Null()),
				statecheck.ExpectKnownOutputValue("www", stringList("192.0.2.11")),
				statecheck.ExpectKnownValue("data.zonegit_records.filtered", tfjsonpath.New("records"), knownvalue.ListExact([]knownvalue.Check{
					record("example.com.", "A", 3600, "192.0.2.1"),
					record("example.com.", "AAAA", 3600, "2001:db8::1"),
					record("example.com.", "MX", 300, "10 mail.example.com.", "20 mail2.example.com."),
					record("d.a.b.c.example.com.", "AAAA", 600, "2001:db8::100"),
					record("www.example.com.", "A", 300, "192.0.2.11"),
					record("www.example.com.", "AAAA", 300, "2001:db8::10"),
				})),
				statecheck.ExpectKnownValue("data.zonegit_records.diff", tfjsonpath.New("diff_from_commit"), knownvalue.StringExact(h1)),
				statecheck.ExpectKnownValue("data.zonegit_records.diff", tfjsonpath.New("added"), stringList("new.example.com. A")),
				statecheck.ExpectKnownValue("data.zonegit_records.diff", tfjsonpath.New("removed"), stringList("ftp.example.com. CNAME")),
				statecheck.ExpectKnownValue("data.zonegit_records.diff", tfjsonpath.New("changed"), stringList("example.com. SOA", "www.example.com. A")),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrWith("data.zonegit_records.branch", "zone_file", zoneFileIs(v2)),
				resource.TestCheckResourceAttrWith("data.zonegit_records.tag", "zone_file", zoneFileIs(v1)),
				resource.TestCheckResourceAttrWith("data.zonegit_records.hash", "zone_file", zoneFileIs(v1)),
			),
		}},
	})
}

// treeDigest hashes every file name, size and content under dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestAccRecords_replica: records and a diff from a local replica, which
// the read never changes; no primary is configured at all.
func TestAccRecords_replica(t *testing.T) {
	v1, v2 := exampleZone(t)
	dir := filepath.Join(t.TempDir(), "replica")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h1 := importZone(t, r, recordsZone, "main", v1)
	if err := r.UpdateTag(recordsZone, "v1", repo.ZeroHash, repo.MustParseHash(h1), nil); err != nil {
		t.Fatal(err)
	}
	h2 := importZone(t, r, recordsZone, "main", v2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, dir)

	config := fmt.Sprintf(`
data "zonegit_records" "main" {
  zone      = %q
  ref       = "main"
  path      = %q
  diff_from = "v1"
  types     = ["A", "CNAME"]
}

data "zonegit_records" "hash" {
  zone = %[1]q
  ref  = %[3]q
  path = %[2]q
}
`, recordsZone, dir, h1)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.zonegit_records.main", tfjsonpath.New("commit"), knownvalue.StringExact(h2)),
				statecheck.ExpectKnownValue("data.zonegit_records.main", tfjsonpath.New("records").AtSliceIndex(0),
					record("example.com.", "A", 3600, "192.0.2.1")),
				statecheck.ExpectKnownValue("data.zonegit_records.main", tfjsonpath.New("added"), stringList("new.example.com. A")),
				statecheck.ExpectKnownValue("data.zonegit_records.main", tfjsonpath.New("removed"), stringList("ftp.example.com. CNAME")),
				// The SOA changed too, but the types filter leaves it out.
				statecheck.ExpectKnownValue("data.zonegit_records.main", tfjsonpath.New("changed"), stringList("www.example.com. A")),
				statecheck.ExpectKnownValue("data.zonegit_records.hash", tfjsonpath.New("commit"), knownvalue.StringExact(h1)),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrWith("data.zonegit_records.hash", "zone_file", zoneFileIs(v1)),
				func(*terraform.State) error {
					if after := treeDigest(t, dir); after != before {
						return fmt.Errorf("reading the replica changed its files")
					}
					return nil
				},
			),
		}},
	})
}

// TestAccRecords_precondition: a precondition on a replica, over the
// records of the commit it would pull, blocks the apply when a record is
// missing; the replica stays where it was.
func TestAccRecords_precondition(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	v1, v2 := exampleZone(t)
	h1 := importZone(t, p.repo, recordsZone, "main", v1)
	dir := filepath.Join(t.TempDir(), "replica")

	config := fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
}

data "zonegit_records" "main" {
  zone  = %q
  ref   = "main"
  names = ["ftp.example.com."]
}

resource "zonegit_replica" "test" {
  path = %q
  pins = { "example.com./main" = data.zonegit_records.main.commit }

  lifecycle {
    precondition {
      condition     = length(data.zonegit_records.main.records) == 1
      error_message = "ftp.example.com. is missing from commit ${data.zonegit_records.main.commit}."
    }
  }
}
`, p.URL, recordsZone, dir)
	at := func(h *string) func() map[string]string {
		return func() map[string]string { return map[string]string{recordsZone + "/main": *h} }
	}
	var h2 string

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check:  checkDisk(t, dir, at(&h1)),
			},
			{
				// v2 deletes ftp: the plan stops before anything is pulled.
				PreConfig:   func() { h2 = importZone(t, p.repo, recordsZone, "main", v2) },
				Config:      config,
				ExpectError: errorLike("Resource precondition failed", "ftp.example.com. is missing from commit"),
			},
			{
				// The replica is still at v1; with ftp back, the apply goes through.
				PreConfig: func() {
					if got := localRefs(t, dir); got[recordsZone+"/main"] != h1 {
						t.Errorf("after the blocked apply the replica has %v, want main at %s", got, h1)
					}
					h2 = importZone(t, p.repo, recordsZone, "main", v2+"\nftp.example.com. 3600 IN CNAME www.example.com.\n")
				},
				Config: config,
				Check:  checkDisk(t, dir, at(&h2)),
			},
		},
	})
}

// TestAccRecords_badInputs: each bad input is a diagnostic naming the
// value (and the attribute).
func TestAccRecords_badInputs(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	v1, _ := exampleZone(t)
	h1 := importZone(t, p.repo, recordsZone, "main", v1)
	importZone(t, p.repo, recordsZone, "dev", v1)
	p.tag(recordsZone, "dev", h1) // a tag named like a branch
	p.tag(recordsZone, "v1", h1)
	v0 := newTestPrimary(t, primaryOptions{V0Only: true})
	v0h := importZone(t, v0.repo, recordsZone, "main", v1)
	v0.tag(recordsZone, "v1", v0h)
	absent := strings.Repeat("ab", 32)

	ds := func(args string) string {
		return fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
}

data "zonegit_records" "test" {
  %s
}
`, p.URL, args)
	}
	steps := []struct {
		args string
		want *regexp.Regexp
	}{
		{`zone = "example.net."
  ref = "main"`, errorLike("Zone not on primary", "has no zone example.net.", "Its zones: example.com.")},
		{`zone = "Example.com."
  ref = "main"`, errorLike("Invalid zone", `"Example.com."`, "must be lowercase")},
		{`zone = "example.com."
  ref = "nope"`, errorLike("Unknown ref", `no branch or tag named "nope"`, "Branches: dev, main; tags: dev, v1")},
		{`zone = "example.com."
  ref = "main"
  diff_from = "` + absent + `"`, errorLike("Unknown commit", "has no commit "+absent)},
		{`zone = "example.com."
  ref = "v1"
  primary_url = "` + v0.URL + `"`, errorLike("Unknown ref", `no branch named "v1"`, `no "tags" extension`)},
		{`zone = "example.com."
  ref = "v1"
  diff_from = "dev"`, errorLike("Ambiguous ref", `"dev" is both a branch`, "Give the commit hash")},
		{`zone = "example.com."
  ref = "main"
  types = ["A", "AAAAA"]`, errorLike("Invalid RR type", `"AAAAA" is not an RR type`)},
		{`zone = "example.com."
  ref = "main"
  names = ["www.example.com", "www.example.org."]`, errorLike("Invalid name", `"www.example.com" is not a fully qualified name in zone example.com.`)},
		{`zone = "example.com."
  ref = "main"
  names = ["www.example.org."]`, errorLike("Invalid name", `"www.example.org." is not a fully qualified name in zone example.com.`)},
		{`zone = "example.com."
  ref = "main"
  path = "` + filepath.Join(t.TempDir(), "absent") + `"`, errorLike("Cannot read replica", "no repository is there")},
		{`zone = "example.com."
  ref = "main"
  path = "x"
  primary_url = "` + p.URL + `"`, regexp.MustCompile(`(?s)Invalid Attribute Combination.*primary_url`)},
	}
	var ts []resource.TestStep
	for _, s := range steps {
		ts = append(ts, resource.TestStep{Config: ds(s.args), ExpectError: s.want})
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testAccProtoV6ProviderFactories, Steps: ts})
}

// TestAccRecords_transfersOnlyTheCommit: from a primary, the data source
// asks for the commits it reads and nothing else: not the branch tips, not
// the tags (one of which reaches history the read does not need), and it
// knows nothing beforehand (it keeps nothing between reads).
func TestAccRecords_transfersOnlyTheCommit(t *testing.T) {
	var (
		mu    sync.Mutex
		roots = map[string]bool{}
		known int
		inner http.Handler
	)
	p := newTestPrimary(t, primaryOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == replicate.BasePath+"/objects/walk" || req.URL.Path == replicate.BasePath+"/objects/pack" {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r, k, err := wire.ParseWalkRequest(bytes.NewReader(body), 1<<20, 1000)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			for _, h := range r {
				roots[h.String()] = true
			}
			known += len(k)
			mu.Unlock()
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		inner.ServeHTTP(w, req)
	})})
	srv := &replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return p.repo, nil }}
	mux := http.NewServeMux()
	srv.RegisterHandlers(mux)
	inner = mux

	v1, v2 := exampleZone(t)
	h1 := importZone(t, p.repo, recordsZone, "main", v1)
	h2 := importZone(t, p.repo, recordsZone, "main", v2)
	other := importZone(t, p.repo, recordsZone, "other", v2+"\nextra IN A 192.0.2.99\n")
	p.tag(recordsZone, "v1", h1)
	p.tag(recordsZone, "other", other)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
data "zonegit_records" "test" {
  primary_url = %q
  zone        = %q
  ref         = %q
}
`, p.URL, recordsZone, h1),
			Check: func(*terraform.State) error {
				mu.Lock()
				defer mu.Unlock()
				if len(roots) != 1 || !roots[h1] {
					return fmt.Errorf("the data source asked the primary for roots %v, want only %s (not main at %s nor the tag at %s)",
						sortedSet(roots), h1, h2, other)
				}
				if known != 0 {
					return fmt.Errorf("the data source claimed to know %d objects, want none", known)
				}
				return nil
			},
		}},
	})
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestAccRecords_primaryCannotServe: a primary that lists its refs but
// cannot serve the objects is a diagnostic naming the commit and the
// primary, not an empty list of records.
func TestAccRecords_primaryCannotServe(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	v1, _ := exampleZone(t)
	h1 := importZone(t, p.repo, recordsZone, "main", v1)
	p.failObjects.Store(true)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
data "zonegit_records" "test" {
  primary_url = %q
  zone        = %q
  ref         = "main"
}
`, p.URL, recordsZone),
			ExpectError: errorLike("Cannot transfer the commit", "Transferring commit "+h1+" of zone example.com. from primary "+p.URL, "500"),
		}},
	})
}
