package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// importVector imports a golden-vector zone file into an in-memory
// repository and returns the repository and the commit.
func importVector(t *testing.T, zone, file string) (*Repo, Hash) {
	t.Helper()
	r, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	src, err := os.ReadFile(filepath.Join(vectorsDir, "zones", file))
	if err != nil {
		t.Fatalf("golden vector %s is missing: %v", file, err)
	}
	res, err := r.Import(context.Background(), ImportOptions{Zone: zone, Source: strings.NewReader(string(src)), SourceName: file})
	if err != nil {
		t.Fatal(err)
	}
	return r, res.Commit
}

// parsedRRsets parses a master file with miekg/dns and groups its records
// into RRsets as the import semantics say: owners lowercased, the lowest
// TTL of a set, identical records once.
func parsedRRsets(t *testing.T, text, origin string) map[string][]dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	out := map[string][]dns.RR{}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		key := h.Name + " " + dns.Type(h.Rrtype).String()
		dup := false
		for _, o := range out[key] {
			if dns.IsDuplicate(o, rr) {
				dup = true
			}
		}
		if !dup {
			out[key] = append(out[key], rr)
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, set := range out {
		low := set[0].Header().Ttl
		for _, rr := range set {
			low = min(low, rr.Header().Ttl)
		}
		for _, rr := range set {
			rr.Header().Ttl = low
		}
	}
	return out
}

// canonicalLess orders owner names as RFC 4034 §6.1 does (for lowercase
// names without escapes): label by label from the right.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	slices.Reverse(la)
	slices.Reverse(lb)
	return slices.Compare(la, lb) < 0
}

// checkRecords asserts that sets hold exactly the RRsets of want, each
// record's data text as miekg/dns prints it, in canonical order.
func checkRecords(t *testing.T, sets []*RRset, want map[string][]dns.RR) {
	t.Helper()
	if len(sets) != len(want) {
		t.Errorf("%d RRsets, want %d", len(sets), len(want))
	}
	for i, s := range sets {
		if i > 0 {
			prev := sets[i-1]
			inOrder := canonicalLess(prev.Name, s.Name) || prev.Name == s.Name && prev.Type < s.Type
			if !inOrder {
				t.Errorf("RRset %s comes after %s: not in canonical order", s.Key(), prev.Key())
			}
		}
		exp, ok := want[s.Key()]
		if !ok {
			t.Errorf("RRset %s is not in the zone file", s.Key())
			continue
		}
		if len(s.RData) != len(exp) || len(s.RRs) != len(exp) {
			t.Errorf("%s: %d records (%q), want %d", s.Key(), len(s.RData), s.RData, len(exp))
			continue
		}
		if s.TTL != exp[0].Header().Ttl {
			t.Errorf("%s: TTL %d, want %d", s.Key(), s.TTL, exp[0].Header().Ttl)
		}
		for j, rr := range s.RRs {
			found := false
			for _, e := range exp {
				if slices.Equal(wire(t, rr), wire(t, e)) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: record %q is not in the zone file", s.Key(), rr.String())
			}
			// The data text, under the RRset's header, parses back to the record.
			back, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", s.Name, s.TTL, s.Type, s.RData[j]))
			if err != nil || back == nil || !slices.Equal(wire(t, back), wire(t, rr)) {
				t.Errorf("%s: record data %q does not parse back to %q: %v", s.Key(), s.RData[j], rr.String(), err)
			}
		}
	}
}

// wire is rr's uncompressed wire form (header included).
func wire(t *testing.T, rr dns.RR) []byte {
	t.Helper()
	buf := make([]byte, 1<<17)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatalf("pack %s: %v", rr, err)
	}
	return buf[:n]
}

// TestZoneRecordsVectors: the RRsets read from an imported golden-vector
// zone are the records miekg/dns parses from the zone file, in canonical
// order, and ZoneFileText parses back to the same records.
func TestZoneRecordsVectors(t *testing.T) {
	for _, v := range []struct{ zone, file string }{
		{"example.com.", "example.zone"},
		{"types.test.", "types.zone"},
	} {
		t.Run(v.file, func(t *testing.T) {
			r, commit := importVector(t, v.zone, v.file)
			src, err := os.ReadFile(filepath.Join(vectorsDir, "zones", v.file))
			if err != nil {
				t.Fatal(err)
			}
			want := parsedRRsets(t, string(src), v.zone)
			var sets []*RRset
			err = r.View(func(rd Reader) error {
				_, sets, err = ZoneRecords(rd, commit, v.zone, nil)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, sets, want)
			if sets[0].Name != v.zone {
				t.Errorf("first RRset %s, want one at the apex", sets[0].Key())
			}
			// The master-file text re-parses to the same records.
			checkRecords(t, sets, parsedRRsets(t, ZoneFileText(sets), "."))
		})
	}
}

// TestZoneRecordsFilter: keep skips names and whole subtrees.
func TestZoneRecordsFilter(t *testing.T) {
	r, commit := importVector(t, "example.com.", "example.zone")
	var asked []string
	var sets []*RRset
	err := r.View(func(rd Reader) (err error) {
		_, sets, err = ZoneRecords(rd, commit, "example.com.", func(name string) (bool, bool) {
			asked = append(asked, name)
			return name == "www.example.com." || name == "a.b.c.example.com.", name == "example.com."
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range sets {
		keys = append(keys, s.Key())
	}
	if want := []string{"www.example.com. A", "www.example.com. AAAA"}; !slices.Equal(keys, want) {
		t.Errorf("filtered RRsets %q, want %q", keys, want)
	}
	if slices.Contains(asked, "b.c.example.com.") {
		t.Errorf("keep was asked about b.c.example.com. below c.example.com., which it refused: %q", asked)
	}
}

// TestZoneRecordsWrongZone: a commit read as another zone's is an error
// naming the mismatch, not records with wrong names.
func TestZoneRecordsWrongZone(t *testing.T) {
	r, commit := importVector(t, "example.com.", "example.zone")
	err := r.View(func(rd Reader) error {
		_, _, err := ZoneRecords(rd, commit, "example.org.", nil)
		return err
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "owner is example.com., not") {
		t.Fatalf("err = %v, want a mismatch of owner names", err)
	}
	err = r.View(func(rd Reader) error {
		_, _, err := ZoneRecords(rd, HashObject(KindCommit, []byte("absent")), "example.com.", nil)
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}
