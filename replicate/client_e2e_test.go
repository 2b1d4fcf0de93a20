package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/server"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// primary is a real Server over a writable repository in a temp dir,
// behind an optional fault-injecting wrapper.
type primary struct {
	repo  *repo.Repo
	srv   *replicate.Server
	http  *httptest.Server
	stats *server.ServerStats
}

func newPrimary(t testing.TB, v0 bool, wrap func(http.Handler) http.Handler) *primary {
	t.Helper()
	p := &primary{repo: openRepo(t, t.TempDir()), stats: &server.ServerStats{}}
	p.srv = &replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return p.repo, nil }, V0Only: v0, Stats: p.stats}
	h := p.srv.Handler()
	if !v0 && !usesPack(t, v0) {
		h = stripCapability(t, h, wire.CapPack, wire.PackPath)
	}
	if wrap != nil {
		h = wrap(h)
	}
	p.http = httptest.NewServer(h)
	t.Cleanup(p.http.Close)
	return p
}

func (p *primary) url() string { return p.http.URL }

func newClient(t testing.TB, url string, local *repo.Repo, mod func(*replicate.ClientOptions)) *replicate.Client {
	t.Helper()
	o := replicate.ClientOptions{PrimaryURL: url, RetryMinDelay: time.Millisecond, RetryMaxDelay: 20 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	c, err := replicate.NewClientWithOptions(local, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustSynthetic(t testing.TB, r *repo.Repo, zone, branch string, n int) repo.Hash {
	t.Helper()
	h, err := repotest.SyntheticZone(r, zone, branch, n)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustSetA(t testing.TB, r *repo.Repo, zone, branch, label string, ip byte) repo.Hash {
	t.Helper()
	h, err := repotest.SetA(r, zone, branch, []string{label}, 300, [4]byte{192, 0, 2, ip})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// assertSound checks the replica invariant: every branch and tag points at
// a complete closure of objects that re-hash to their keys (our own check,
// plus repo.Fsck once it is implemented).
func assertSound(t testing.TB, r *repo.Repo) {
	t.Helper()
	var refs []repo.Ref
	bs, err := r.Branches("")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := r.Tags("")
	if err != nil {
		t.Fatal(err)
	}
	refs = append(bs, ts...)
	seen := map[repo.Hash]bool{}
	for _, ref := range refs {
		stack := []repo.Hash{ref.Hash}
		for len(stack) > 0 {
			h := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[h] {
				continue
			}
			seen[h] = true
			kind, payload, err := r.Get(h)
			if err != nil {
				t.Fatalf("ref %s/%s reaches %s: %v", ref.Zone, ref.Name, h.Short(), err)
			}
			if repo.HashObject(kind, payload) != h {
				t.Fatalf("object %s does not re-hash to its key", h.Short())
			}
			links, err := repo.Links(kind, payload)
			if err != nil {
				t.Fatalf("object %s: %v", h.Short(), err)
			}
			for _, l := range links {
				stack = append(stack, l.Hash)
			}
		}
	}
	rep, err := r.Fsck(context.Background())
	if err != nil && strings.Contains(err.Error(), "not implemented") {
		return
	}
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("fsck: %+v", rep.Problems)
	}
}

// assertConverged checks the replica's branches equal the primary's.
func assertConverged(t testing.TB, primary, local *repo.Repo) {
	t.Helper()
	want, got := localRefs(t, primary), localRefs(t, local)
	if len(want) != len(got) {
		t.Fatalf("replica refs %v, primary %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("replica %s = %q, primary %s", k, got[k], v)
		}
	}
	assertSound(t, local)
}

// forEachMode runs fn against a primary with every extension ("pack"),
// one that does not announce pack ("batch": walk, then batch streams), and
// a plain v0 primary ("v0only").
func forEachMode(t *testing.T, fn func(t *testing.T, v0 bool)) {
	t.Run("pack", func(t *testing.T) { fn(t, false) })
	t.Run("batch", func(t *testing.T) {
		withoutPack.Store(t, true)
		t.Cleanup(func() { withoutPack.Delete(t) })
		fn(t, false)
	})
	t.Run("v0only", func(t *testing.T) { fn(t, true) })
}

// withoutPack holds the tests (testing.TB) whose primaries hide the pack
// extension: the server always offers it, so a wrapper strips it from the
// capabilities and refuses the endpoint.
var withoutPack sync.Map

// usesPack reports whether a primary made by newPrimary in t streams packs.
func usesPack(t testing.TB, v0 bool) bool {
	_, hidden := withoutPack.Load(t)
	return !v0 && !hidden
}

// stripCapability hides one extension from clients: it is removed from the
// capabilities header of /v0/refs and its endpoint fails the test if used.
func stripCapability(t testing.TB, h http.Handler, capability, path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			t.Errorf("client used %s although the primary did not announce %q", path, capability)
			http.Error(w, "not offered", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(&capStripper{ResponseWriter: w, drop: capability}, r)
	})
}

type capStripper struct {
	http.ResponseWriter
	drop  string
	wrote bool
}

func (c *capStripper) strip() {
	if c.wrote {
		return
	}
	c.wrote = true
	hdr := c.Header()
	v := hdr.Get(wire.CapabilitiesHeader)
	if v == "" {
		return
	}
	var keep []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != c.drop {
			keep = append(keep, f)
		}
	}
	hdr.Set(wire.CapabilitiesHeader, strings.Join(keep, ", "))
}

func (c *capStripper) WriteHeader(code int) { c.strip(); c.ResponseWriter.WriteHeader(code) }
func (c *capStripper) Write(p []byte) (int, error) {
	c.strip()
	return c.ResponseWriter.Write(p)
}

func (c *capStripper) Flush() {
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func TestE2EFullIncrementalNoop(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		tip := mustSynthetic(t, p.repo, "example.com.", "main", 500)
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, nil)
		ctx := context.Background()

		res, err := c.PullWith(ctx, replicate.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		full := repotest.Closure(t, p.repo, tip)
		if res.Objects != len(full) {
			t.Errorf("full pull: %d objects, want %d (the closure)", res.Objects, len(full))
		}
		if v0 && res.Requests != 2+len(full) {
			t.Errorf("v0 full pull: %d requests, want %d", res.Requests, 2+len(full))
		}
		if usesPack(t, v0) && res.Requests != 2 {
			t.Errorf("pack full pull: %d requests, want 2 (refs, pack)", res.Requests)
		}
		if !v0 && res.Requests > 4 {
			t.Errorf("batch full pull: %d requests, want at most 4 (refs, walk, batch)", res.Requests)
		}
		assertConverged(t, p.repo, local)

		// One changed record: commit, root tree, the name's tree, its blob.
		tip2 := mustSetA(t, p.repo, "example.com.", "main", "h7", 9)
		res, err = c.PullWith(ctx, replicate.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Objects != 4 {
			t.Errorf("incremental pull: %d objects, want 4", res.Objects)
		}
		if usesPack(t, v0) && res.Requests != 2 {
			t.Errorf("pack incremental pull: %d requests, want 2 (refs, pack)", res.Requests)
		}
		if b := res.Branches[0]; b.Old != tip.String() || b.New != tip2.String() || b.Objects != 4 {
			t.Errorf("incremental result %+v", b)
		}
		assertConverged(t, p.repo, local)

		res, err = c.PullWith(ctx, replicate.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Objects != 0 || res.Requests != 1 {
			t.Errorf("no-op pull: %d objects, %d requests; want 0, 1", res.Objects, res.Requests)
		}
	})
}

func TestE2EManyZonesBranchesFiltersPrune(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		for z := 0; z < 4; z++ {
			zone := fmt.Sprintf("z%d.test.", z)
			for _, b := range []string{"main", "canary", "staging"} {
				mustSynthetic(t, p.repo, zone, b, 20+z)
			}
		}
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, nil)
		ctx := context.Background()

		// Globs: two zones, branches starting with "ma" or exactly canary.
		res, err := c.PullWith(ctx, replicate.PullOptions{Zones: []string{"z[01].test."}, Branches: []string{"ma*", "canary"}})
		if err != nil {
			t.Fatal(err)
		}
		got := localRefs(t, local)
		if len(got) != 4 || got["z0.test./main"] == "" || got["z1.test./canary"] == "" || got["z2.test./main"] != "" {
			t.Fatalf("filtered refs %v", got)
		}
		if len(res.Branches) != 4 {
			t.Errorf("results %d, want 4", len(res.Branches))
		}
		assertSound(t, local)

		// A bad glob is an error naming it, before any traffic.
		if _, err := c.PullWith(ctx, replicate.PullOptions{Zones: []string{"z[.test."}}); err == nil || !strings.Contains(err.Error(), `"z[.test."`) {
			t.Errorf("bad glob: %v", err)
		}

		// Everything, then the primary drops a branch; prune removes it
		// only when asked and only within the selection.
		if _, err := c.PullWith(ctx, replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		assertConverged(t, p.repo, local)
		for _, zb := range [][2]string{{"z0.test.", "staging"}, {"z3.test.", "staging"}} {
			old, _ := p.repo.Branch(zb[0], zb[1])
			if err := p.repo.UpdateBranch(zb[0], zb[1], old, repo.ZeroHash, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.PullWith(ctx, replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := localRefs(t, local); got["z0.test./staging"] == "" {
			t.Fatal("branch pruned without Prune")
		}
		res, err = c.PullWith(ctx, replicate.PullOptions{Prune: true, Zones: []string{"z0.test."}})
		if err != nil {
			t.Fatal(err)
		}
		got = localRefs(t, local)
		if got["z0.test./staging"] != "" || got["z3.test./staging"] == "" {
			t.Fatalf("prune within selection: %v", got)
		}
		pruned := 0
		for _, b := range res.Branches {
			if b.Pruned {
				pruned++
			}
		}
		if pruned != 1 {
			t.Errorf("%d pruned results, want 1", pruned)
		}
		if _, err := c.PullWith(ctx, replicate.PullOptions{Prune: true}); err != nil {
			t.Fatal(err)
		}
		assertConverged(t, p.repo, local)
	})
}

func TestE2ENewBranchSharingHistory(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		tip := mustSynthetic(t, p.repo, "example.com.", "main", 300)
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, nil)
		ctx := context.Background()
		if _, err := c.PullWith(ctx, replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := p.repo.UpdateBranch("example.com.", "canary", repo.ZeroHash, tip, nil); err != nil {
			t.Fatal(err)
		}
		mustSetA(t, p.repo, "example.com.", "canary", "h1", 1)
		mustSetA(t, p.repo, "example.com.", "canary", "h2", 2)
		res, err := c.PullWith(ctx, replicate.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Two commits; the second shares the first's h1 subtree and blob:
		// 2 commits + 2 roots + 2 name trees + 2 blobs.
		if res.Objects != 8 {
			t.Errorf("new branch on shared history fetched %d objects, want 8", res.Objects)
		}
		assertConverged(t, p.repo, local)
	})
}

func TestE2EPins(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		c1 := mustSynthetic(t, p.repo, "example.com.", "main", 50)
		c2 := mustSetA(t, p.repo, "example.com.", "main", "h1", 1)
		c3 := mustSetA(t, p.repo, "example.com.", "main", "h2", 2)
		mustSynthetic(t, p.repo, "other.test.", "main", 10)
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, nil)
		ctx := context.Background()
		pull := func(pins map[string]string) (*replicate.PullResult, error) {
			return c.PullWith(ctx, replicate.PullOptions{Pins: pins})
		}
		if _, err := pull(map[string]string{"example.com./main": c2.String()}); err != nil {
			t.Fatal(err)
		}
		if got := localRefs(t, local); got["example.com./main"] != c2.String() || got["other.test./main"] == "" {
			t.Fatalf("pin c2: %v", got)
		}
		// Back: already local, nothing to fetch.
		res, err := pull(map[string]string{"example.com./main": c1.String()})
		if err != nil {
			t.Fatal(err)
		}
		if got := localRefs(t, local); got["example.com./main"] != c1.String() || res.Objects != 0 {
			t.Fatalf("pin back to c1: %v, %d objects", got, res.Objects)
		}
		// Forward past the primary's tip: pinned to c3, the tip itself.
		if _, err := pull(map[string]string{"example.com./main": c3.String()}); err != nil {
			t.Fatal(err)
		}
		// A pinned branch the primary does not advertise is created.
		if _, err := pull(map[string]string{"example.com./release": c2.String()}); err != nil {
			t.Fatal(err)
		}
		if got := localRefs(t, local); got["example.com./release"] != c2.String() {
			t.Fatalf("pinned unadvertised branch: %v", got)
		}
		// Unknown pin: error naming it; the other branches still apply.
		mustSetA(t, p.repo, "other.test.", "main", "h3", 3)
		bogus := strings.Repeat("ab", 32)
		res, err = pull(map[string]string{"example.com./main": bogus})
		var pe *replicate.PullError
		if !errors.As(err, &pe) || len(pe.Failed) != 1 || !strings.Contains(pe.Failed[0].Error(), "pin example.com./main="+bogus) {
			t.Fatalf("unknown pin error: %v", err)
		}
		if got := localRefs(t, local); got["other.test./main"] != mustBranch(t, p.repo, "other.test.", "main").String() ||
			got["example.com./main"] != c3.String() {
			t.Fatalf("other branches after a failed pin: %v", got)
		}
		_ = res
		assertSound(t, local)
		// Malformed pins are errors naming the key or value.
		for key, val := range map[string]string{"example.com.": c1.String(), "example.com./ma in": c1.String(), "example.com./main": "xyz"} {
			_, err := pull(map[string]string{key: val})
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
				t.Errorf("pin %q=%q: %v", key, val, err)
			}
		}
	})
}

func mustBranch(t testing.TB, r *repo.Repo, zone, name string) repo.Hash {
	t.Helper()
	h, err := r.Branch(zone, name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestE2ETags(t *testing.T) {
	p := newPrimary(t, false, nil)
	c1 := mustSynthetic(t, p.repo, "example.com.", "main", 30)
	tag := &repo.Tag{Object: c1, Type: repo.KindCommit, Name: "v1", Tagger: repotest.Author, Message: "release\n"}
	th, err := p.repo.PutObject(repo.KindTag, tag.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.repo.UpdateTag("example.com.", "v1", repo.ZeroHash, th, nil); err != nil {
		t.Fatal(err)
	}
	mustSetA(t, p.repo, "example.com.", "main", "h1", 1)
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	res, err := c.PullWith(context.Background(), replicate.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := local.Tags("")
	if err != nil || len(tags) != 1 || tags[0].Hash != th || tags[0].Name != "v1" {
		t.Fatalf("tags %v, %v", tags, err)
	}
	var sawTag bool
	for _, b := range res.Branches {
		sawTag = sawTag || (b.Tag && b.Name == "v1")
	}
	if !sawTag {
		t.Errorf("no tag result in %+v", res.Branches)
	}
	assertConverged(t, p.repo, local)

	// A v0 primary has no tags: the same pull replicates branches only.
	p0 := newPrimary(t, true, nil)
	p0.repo = p.repo
	local0 := openRepo(t, t.TempDir())
	if _, err := newClient(t, p0.url(), local0, nil).PullWith(context.Background(), replicate.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := local0.Tags(""); len(tags) != 0 {
		t.Errorf("tags from a v0 primary: %v", tags)
	}
}

func setA(r *repo.Repo, zone, branch, label string, ip byte) (repo.Hash, error) {
	return repotest.SetA(r, zone, branch, []string{label}, 300, [4]byte{192, 0, 2, ip})
}
