package replicate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// replayServer answers like the recorded zonegit daemon: refs.json and the
// recorded walk answers byte for byte, objects from repo-dump.json. Walks
// that were not recorded are computed from the dump (closure(roots) minus
// closure(known)), which is what the daemon does.
type replayServer struct {
	refs    []byte
	walks   []recordedWalk
	objects map[repo.Hash]dumpObject
	dump    *repotest.Dump

	mu          sync.Mutex
	walkBodies  []replicate.WalkRequest
	recordedHit int
	objectGETs  atomic.Int64
}

type recordedWalk struct {
	roots, known []string
	body         []byte
}

type dumpObject struct {
	kind    repo.Kind
	payload []byte
}

func loadReplay(t *testing.T) *replayServer {
	t.Helper()
	dir := repotest.VectorsDir(t)
	rs := &replayServer{objects: map[repo.Hash]dumpObject{}, dump: repotest.ReadDump(t)}
	var err error
	rs.refs, err = os.ReadFile(filepath.Join(dir, "protocol", "refs.json"))
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := filepath.Glob(filepath.Join(dir, "protocol", "walk*.request.json"))
	if len(reqs) == 0 {
		t.Fatal("no recorded walks")
	}
	for _, f := range reqs {
		var req replicate.WalkRequest
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		body, err := os.ReadFile(strings.TrimSuffix(f, ".request.json") + ".json")
		if err != nil {
			t.Fatal(err)
		}
		rs.walks = append(rs.walks, recordedWalk{roots: sortedLower(req.Roots), known: sortedLower(req.Known), body: body})
	}
	for _, e := range rs.dump.Entries {
		if e.Family != "o/" {
			continue
		}
		k, _ := base64.StdEncoding.DecodeString(e.KeyB64)
		v, _ := base64.StdEncoding.DecodeString(e.ValueB64)
		var h repo.Hash
		copy(h[:], k[2:])
		kind, payload, ok := bytes.Cut(v, []byte{0})
		if !ok {
			t.Fatalf("dump object %s has no kind prefix", h)
		}
		rs.objects[h] = dumpObject{kind: repo.Kind(kind), payload: payload}
	}
	return rs
}

func sortedLower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	slices.Sort(out)
	return out
}

func (rs *replayServer) closure(roots []string) map[repo.Hash]bool {
	seen := map[repo.Hash]bool{}
	var stack []repo.Hash
	for _, r := range roots {
		stack = append(stack, repo.MustParseHash(r))
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		o, ok := rs.objects[h]
		if !ok {
			continue
		}
		seen[h] = true
		links, _ := repo.Links(o.kind, o.payload)
		for _, l := range links {
			stack = append(stack, l.Hash)
		}
	}
	return seen
}

func (rs *replayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v0/refs" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rs.refs)
	case r.URL.Path == "/v0/objects/walk" && r.Method == http.MethodPost:
		var req replicate.WalkRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rs.mu.Lock()
		rs.walkBodies = append(rs.walkBodies, req)
		rs.mu.Unlock()
		for _, root := range req.Roots {
			if _, ok := rs.objects[repo.MustParseHash(root)]; !ok {
				http.Error(w, "root "+root[:12]+" not in primary", http.StatusNotFound)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		roots, known := sortedLower(req.Roots), sortedLower(req.Known)
		for _, rw := range rs.walks {
			if slices.Equal(rw.roots, roots) && slices.Equal(rw.known, known) {
				rs.mu.Lock()
				rs.recordedHit++
				rs.mu.Unlock()
				_, _ = w.Write(rw.body)
				return
			}
		}
		have := rs.closure(req.Known)
		resp := replicate.WalkResponse{Missing: []string{}}
		for h := range rs.closure(req.Roots) {
			if !have[h] {
				resp.Missing = append(resp.Missing, h.String())
			}
		}
		_ = json.NewEncoder(w).Encode(resp)
	case strings.HasPrefix(r.URL.Path, "/v0/objects/") && r.Method == http.MethodGet:
		rs.objectGETs.Add(1)
		h, err := repo.ParseHash(strings.TrimPrefix(r.URL.Path, "/v0/objects/"))
		if err != nil {
			http.Error(w, "bad hash", http.StatusBadRequest)
			return
		}
		o, ok := rs.objects[h]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set(wire.ObjectKindHeader, string(o.kind))
		_, _ = w.Write(o.payload)
	default:
		http.Error(w, "not here", http.StatusMethodNotAllowed)
	}
}

func openRepo(t testing.TB, dir string) *repo.Repo {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func localObjects(t testing.TB, r *repo.Repo) map[repo.Hash]bool {
	t.Helper()
	out := map[repo.Hash]bool{}
	err := r.ForEachObject(func(h repo.Hash, _ repo.Kind, _ []byte) error {
		out[h] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func localRefs(t testing.TB, r *repo.Repo) map[string]string {
	t.Helper()
	bs, err := r.Branches("")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range bs {
		out[b.Zone+"/"+b.Name] = b.Hash.String()
	}
	return out
}

func TestReplayPullIntoEmptyRepo(t *testing.T) {
	rs := loadReplay(t)
	srv := httptest.NewServer(rs)
	defer srv.Close()
	local := openRepo(t, t.TempDir())
	c, err := replicate.NewClientWithOptions(local, replicate.ClientOptions{PrimaryURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.PullWith(context.Background(), replicate.PullOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}

	// Local refs equal refs.json.
	var want replicate.RefsResponse
	if err := json.Unmarshal(rs.refs, &want); err != nil {
		t.Fatal(err)
	}
	got := localRefs(t, local)
	if len(got) != len(want.Branches) {
		t.Fatalf("local refs %v, want %v", got, want.Branches)
	}
	for _, b := range want.Branches {
		if got[b.Zone+"/"+b.Name] != b.Hash {
			t.Errorf("branch %s/%s = %q, want %s", b.Zone, b.Name, got[b.Zone+"/"+b.Name], b.Hash)
		}
	}
	zones, err := local.Zones()
	if err != nil || !slices.Equal(zones, want.Zones) {
		t.Errorf("zones %v (%v), want %v", zones, err, want.Zones)
	}
	// HEAD of the new replica names main, like the primary's.
	if head, err := local.Head(); err != nil || head != rs.dump.Head.Target {
		t.Errorf("HEAD = %q (%v), want %q", head, err, rs.dump.Head.Target)
	}

	// Local objects equal the dump's reachable objects (HEAD's symref
	// included: the replica's HEAD is the same symref object).
	wantObjs := map[repo.Hash]bool{}
	for _, e := range rs.dump.Entries {
		if e.Family == "o/" && len(e.ReachableFrom) > 0 {
			k, _ := base64.StdEncoding.DecodeString(e.KeyB64)
			var h repo.Hash
			copy(h[:], k[2:])
			wantObjs[h] = true
		}
	}
	gotObjs := localObjects(t, local)
	for h := range wantObjs {
		if !gotObjs[h] {
			t.Errorf("reachable object %s not replicated", h.Short())
		}
	}
	for h := range gotObjs {
		if !wantObjs[h] {
			t.Errorf("object %s replicated but not reachable on the primary", h.Short())
		}
	}

	// One walk (the recorded both-tips walk), then one GET per object.
	if rs.recordedHit != 1 || len(rs.walkBodies) != 1 {
		t.Errorf("walks: %d requests, %d matched a recording; want 1 and 1", len(rs.walkBodies), rs.recordedHit)
	}
	fetched := len(wantObjs) - 1 // all but the HEAD symref
	if res.Objects != fetched || int(rs.objectGETs.Load()) != fetched {
		t.Errorf("objects: result %d, GETs %d; want %d", res.Objects, rs.objectGETs.Load(), fetched)
	}
	if res.Requests != 2+fetched {
		t.Errorf("requests = %d, want %d (refs + walk + one GET per object)", res.Requests, 2+fetched)
	}
	var sum int
	for _, b := range res.Branches {
		if b.Err != nil {
			t.Errorf("branch %s/%s: %v", b.Zone, b.Name, b.Err)
		}
		sum += b.Objects
		if b.Old != "" {
			t.Errorf("branch %s: old = %q, want empty", b.Name, b.Old)
		}
	}
	if sum != res.Objects {
		t.Errorf("per-branch objects sum to %d, total %d", sum, res.Objects)
	}

	// The reflog says who moved the ref and from where.
	log, err := local.Reflog(repo.BranchRef("example.com.", "main"))
	if err != nil || len(log) != 1 {
		t.Fatalf("reflog: %v, %v", log, err)
	}
	if log[0].Op != "replicate" || !strings.Contains(log[0].Message, srv.URL) || log[0].Old != repo.ZeroHash {
		t.Errorf("reflog entry %+v", log[0])
	}

	// No-op: nothing to walk, nothing fetched, one request.
	res, err = c.PullWith(context.Background(), replicate.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 0 || res.Requests != 1 {
		t.Errorf("no-op pull: %d objects, %d requests; want 0 and 1", res.Objects, res.Requests)
	}
}

// TestReplayIncremental pulls c1 by pin, then the recorded incremental walk
// (main with c1 known) and the recorded canary-with-main-known walk.
func TestReplayIncremental(t *testing.T) {
	rs := loadReplay(t)
	srv := httptest.NewServer(rs)
	defer srv.Close()
	local := openRepo(t, t.TempDir())
	c, err := replicate.NewClientWithOptions(local, replicate.ClientOptions{PrimaryURL: srv.URL, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	c1 := "b439eb3680cb2220680337df5de93d82b705edd07162e5ba7ce3694d815ce6b7"
	ctx := context.Background()
	if _, err := c.PullWith(ctx, replicate.PullOptions{Branches: []string{"main"}, Pins: map[string]string{"example.com./main": strings.ToUpper(c1)}}); err != nil {
		t.Fatal(err)
	}
	if got := localRefs(t, local); got["example.com./main"] != c1 || len(got) != 1 {
		t.Fatalf("after pin: %v", got)
	}
	res, err := c.PullWith(ctx, replicate.PullOptions{Branches: []string{"ma?n"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 5 {
		t.Errorf("incremental fetched %d objects, want 5 (walk-incremental)", res.Objects)
	}
	res, err = c.PullWith(ctx, replicate.PullOptions{Zones: []string{"*.com."}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 4 {
		t.Errorf("canary fetched %d objects, want 4 (walk-canary-known-main)", res.Objects)
	}
	if rs.recordedHit != 2 {
		t.Errorf("%d walks matched a recording, want 2", rs.recordedHit)
	}
	for _, w := range rs.walkBodies {
		if w.Known == nil {
			t.Errorf("walk sent known=null; v0 daemons expect an array")
		}
	}
	// A pin the primary does not have is an error naming it, and the
	// other branches still apply.
	unknown := strings.Repeat("1", 64)
	_, err = c.PullWith(ctx, replicate.PullOptions{Pins: map[string]string{"example.com./old": unknown}})
	var pe *replicate.PullError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Name != "old" ||
		!strings.Contains(err.Error(), "pin example.com./old="+unknown) {
		t.Fatalf("unknown pin: %v", err)
	}
}
