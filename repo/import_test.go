package repo

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// openTestRepo opens a writable on-disk repository in a temporary directory.
func openTestRepo(t testing.TB) *Repo {
	t.Helper()
	r, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func importString(t testing.TB, r *Repo, zone, branch, text string) (*ImportResult, error) {
	t.Helper()
	return r.Import(context.Background(), ImportOptions{
		Zone: zone, Branch: branch, Source: strings.NewReader(text), SourceName: "test.zone",
		Author: Signature{Name: "Test", Email: "test@example.invalid"},
	})
}

// treeIndex walks a tree from the store and returns path -> tree hash and
// (path, type) -> blob hash, keyed by the path labels joined with "/".
func treeIndex(t testing.TB, r *Repo, root Hash) (trees map[string]Hash, blobs map[string]Hash) {
	t.Helper()
	trees, blobs = map[string]Hash{}, map[string]Hash{}
	var walk func(path string, h Hash)
	walk = func(path string, h Hash) {
		kind, payload, err := r.Get(h)
		if err != nil {
			t.Fatalf("tree %q: %v", path, err)
		}
		if kind != KindTree {
			t.Fatalf("tree %q: kind %s", path, kind)
		}
		if got := HashObject(kind, payload); got != h {
			t.Fatalf("tree %q: stored under %s but hashes to %s", path, h, got)
		}
		trees[path] = h
		tr, err := DecodeTree(payload)
		if err != nil {
			t.Fatalf("tree %q: %v", path, err)
		}
		for _, e := range tr.Entries {
			if e.Kind == EntrySubtree {
				walk(strings.TrimPrefix(path+"/"+e.Name, "/"), e.Hash)
				continue
			}
			kind, payload, err := r.Get(e.Hash)
			if err != nil || kind != KindBlob {
				t.Fatalf("blob %q %s: kind %s, %v", path, e.Name, kind, err)
			}
			if _, err := DecodeBlob(payload); err != nil {
				t.Fatalf("blob %q %s: %v", path, e.Name, err)
			}
			blobs[path+" "+e.Name] = e.Hash
		}
	}
	walk("", root)
	return trees, blobs
}

func TestImportGoldenZones(t *testing.T) {
	for _, name := range []string{"example", "types"} {
		t.Run(name, func(t *testing.T) {
			var v zoneVector
			readVectorJSON(t, &v, "zones", name+".json")
			f, err := os.Open(vectorPath(t, "zones", v.ZoneFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := openTestRepo(t)
			res, err := r.Import(context.Background(), ImportOptions{Zone: v.Zone, Source: f, SourceName: v.ZoneFile})
			if err != nil {
				t.Fatal(err)
			}
			trees, blobs := treeIndex(t, r, res.Tree)
			// Blobs first: they pinpoint a difference better than the root.
			for _, b := range v.Blobs {
				key := strings.Join(b.Path, "/") + " " + b.Type
				got, ok := blobs[key]
				if !ok {
					t.Errorf("blob %s (%s %s) missing from the imported tree", key, b.Owner, b.Type)
					continue
				}
				if got.String() != b.Hash {
					_, payload, _ := r.Get(got)
					t.Errorf("blob %s: hash %s, want %s\n got payload %x\nwant payload %s", key, got, b.Hash, payload, b.PayloadHex)
				}
			}
			for _, tr := range v.Trees {
				key := strings.Join(tr.Path, "/")
				if got := trees[key]; got.String() != tr.Hash {
					_, payload, _ := r.Get(got)
					t.Errorf("tree %q: hash %s, want %s\n got payload %x\nwant payload %s", key, got, tr.Hash, payload, tr.PayloadHex)
				}
			}
			if res.Tree.String() != v.TreeHash {
				t.Errorf("root tree %s, want %s", res.Tree, v.TreeHash)
			}
			if len(blobs) != v.Counts.Blobs || len(trees) != v.Counts.Trees {
				t.Errorf("imported tree has %d blobs and %d trees, want %d and %d", len(blobs), len(trees), v.Counts.Blobs, v.Counts.Trees)
			}
			if res.RRsets != v.Counts.RRsets || res.Blobs != v.Counts.Blobs || res.Trees != v.Counts.Trees || res.Objects != v.Counts.Reachable {
				t.Errorf("result counts rrsets=%d blobs=%d trees=%d objects=%d, want %d %d %d %d",
					res.RRsets, res.Blobs, res.Trees, res.Objects, v.Counts.RRsets, v.Counts.Blobs, v.Counts.Trees, v.Counts.Reachable)
			}
			if !res.Changed || !res.Parent.IsZero() || res.Branch != "main" {
				t.Errorf("result %+v: want a changed root commit on main", res)
			}
			tip, err := r.Branch(v.Zone, "main")
			if err != nil || tip != res.Commit {
				t.Fatalf("branch main = %s, %v; want %s", tip, err, res.Commit)
			}
		})
	}
}

func TestImportErrorsNameLine(t *testing.T) {
	const head = "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n"
	cases := []struct {
		name, text string
		want       []string // substrings of the error
	}{
		{"outside zone", head + "www.example.org. IN A 192.0.2.1\n", []string{"test.zone:4", "www.example.org. A", "outside the zone example.com."}},
		{"lookalike suffix", head + "\n; comment\nxexample.com. IN A 192.0.2.1\n", []string{"test.zone:6", "xexample.com.", "outside the zone"}},
		{"escaped dot", head + "a\\.b IN A 192.0.2.1\n", []string{"test.zone:4", "escaped dot"}},
		{"escaped dot decimal", head + "a\\046b IN A 192.0.2.1\n", []string{"test.zone:4", "escaped dot"}},
		{"other escape", head + "a\\065b IN A 192.0.2.1\n", []string{"test.zone:4", "escape"}},
		{"class CH", head + "www CH A 192.0.2.1\n", []string{"test.zone:4", "class CH", "only IN"}},
		{"include", head + "$INCLUDE /etc/passwd\n", []string{"$INCLUDE", "line: 4", "not supported"}},
		{"syntax error", head + "www IN A not-an-address\n", []string{"test.zone", "line: 4", "bad A"}},
		{"unknown type", head + "www IN BOGUS 1\n", []string{"line: 4"}},
		{"empty zone", "$ORIGIN example.com.\n; nothing here\n", []string{"test.zone", "no records", "empty zone"}},
		{"no rdata", head + "www IN A\n", []string{"test.zone:4", "www.example.com. A", "no data"}},
		{"meta type", head + "www IN TYPE255 \\# 0\n", []string{"test.zone:4", "ANY", "cannot appear in a zone"}},
		{"cname beside data", head + "www IN A 192.0.2.1\nfoo IN A 192.0.2.2\nwww IN CNAME foo\n", []string{"test.zone:6", "www.example.com. CNAME", "beside other data", "A at line 4", "CNAME at line 6"}},
		{"two cnames", head + "www IN CNAME a\nwww IN CNAME b\n", []string{"test.zone:4", "2 different CNAME records"}},
		{"multi-line record after comments", head + "; one\n\n  ; two\nfoo IN TXT ( \"a\"\n  \"b\" )\nbar.example.net. IN A 192.0.2.1\n",
			[]string{"test.zone:9", "bar.example.net."}},
		{"after directives", head + "$TTL 60\n$ORIGIN sub.example.com.\nx IN A 192.0.2.1\nx CH A 192.0.2.1\n", []string{"test.zone:7", "x.sub.example.com. A", "class CH"}},
		{"generate", head + "$GENERATE 1-3 host$ A 192.0.2.$\n$GENERATE 1-2 h$.example.net. A 192.0.2.$\n", []string{"test.zone:5", "h1.example.net."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := openTestRepo(t)
			_, err := importString(t, r, "example.com.", "", c.text)
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errors.Is(err, ErrInvalidZoneFile) {
				t.Errorf("error %q does not wrap ErrInvalidZoneFile", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := r.Branch("example.com.", "main"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a failed import moved the branch: %v", err)
			}
		})
	}
}
