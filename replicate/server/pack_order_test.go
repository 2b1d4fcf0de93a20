package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// TestPackEachObjectAfterALink: in a pack stream every object that is not
// a root comes after an object that links to it, which is the order a
// client needs to know what each frame is for (it accepts only what was
// linked). An object linked from several places is sent once, after the
// first of them, so the stream cannot also put every object before all
// its links: a subtree shared by two new trees follows the first of them
// and precedes the second. The stream holds exactly what the walk lists,
// each object once, and the trailer counts it. The repository has history,
// two branches, subtrees shared between commits and zones, and an
// annotated tag as a root.
func TestPackEachObjectAfterALink(t *testing.T) {
	dir := t.TempDir()
	w, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tips []repo.Hash
	must := func(h repo.Hash, err error) repo.Hash {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := must(repotest.SyntheticZone(w, "example.com.", "main", 60))
	must(repotest.SetA(w, "example.com.", "main", []string{"www", "a"}, 300, [4]byte{192, 0, 2, 1}))
	tips = append(tips, must(repotest.SetA(w, "example.com.", "main", []string{"www", "b"}, 300, [4]byte{192, 0, 2, 2})))
	if err := w.UpdateBranch("example.com.", "canary", repo.ZeroHash, first, nil); err != nil {
		t.Fatal(err)
	}
	tips = append(tips, must(repotest.SetA(w, "example.com.", "canary", []string{"www", "a"}, 300, [4]byte{192, 0, 2, 1})))
	tips = append(tips, must(repotest.SyntheticZone(w, "example.org.", "main", 60)))
	tag := &repo.Tag{Object: tips[0], Type: repo.KindCommit, Name: "v1", Tagger: repo.Signature{Name: "t", Email: "t@example.com", When: 1700000000}}
	tags := must(w.PutObject(repo.KindTag, tag.Encode()))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ts := httptest.NewServer((&Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }}).Handler())
	t.Cleanup(ts.Close)

	hexes := func(hs ...repo.Hash) []string {
		out := []string{}
		for _, h := range hs {
			out = append(out, h.String())
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		roots, known []repo.Hash
	}{
		{"all tips", tips, nil},
		{"tag and tips", append([]repo.Hash{tags}, tips...), nil},
		{"incremental", tips[:2], []repo.Hash{first}},
		{"duplicate roots", []repo.Hash{tips[1], tips[0], tips[1]}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := json.Marshal(wire.WalkRequest{Roots: hexes(tc.roots...), Known: hexes(tc.known...)})
			if err != nil {
				t.Fatal(err)
			}
			_, walked := do(t, http.MethodPost, ts.URL+wire.WalkPath, strings.NewReader(string(body)))
			want := missingSet(t, walked)
			resp, err := http.Post(ts.URL+wire.PackPath, "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != wire.ObjectStreamContentType {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			frames := readFrames(t, resp.Body)
			if got := resp.Trailer.Get(wire.ObjectCountTrailer); got != strconv.Itoa(len(frames)) {
				t.Errorf("trailer %s = %q, %d frames", wire.ObjectCountTrailer, got, len(frames))
			}
			linked := map[repo.Hash]bool{}
			for _, h := range tc.roots {
				linked[h] = true
			}
			sent := map[repo.Hash]bool{}
			shared := 0 // objects linked again after they were sent
			for i, f := range frames {
				if sent[f.hash] {
					t.Fatalf("frame %d: %s %s sent twice", i, f.kind, f.hash.Short())
				}
				if !linked[f.hash] {
					t.Fatalf("frame %d: %s %s comes before any object that links to it", i, f.kind, f.hash.Short())
				}
				sent[f.hash] = true
				links, err := repo.Links(f.kind, f.payload)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				for _, l := range links {
					if sent[l.Hash] {
						shared++
					}
					linked[l.Hash] = true
				}
			}
			if len(sent) != len(want) {
				t.Fatalf("pack sent %d objects, the walk lists %d", len(sent), len(want))
			}
			for h := range sent {
				if !want[h.String()] {
					t.Fatalf("pack sent %s, which the walk does not list", h.Short())
				}
			}
			t.Logf("%d frames, %d links to an object sent before", len(frames), shared)
		})
	}
}
