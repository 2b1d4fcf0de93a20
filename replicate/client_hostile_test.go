package replicate_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// A hostile primary is a real Server over a real store, behind a wrapper
// that lies on purpose: it rewrites or replaces the answers the test
// names and passes everything else through. After every lie the replica
// must be sound (assertSound: every ref's closure complete, every object
// of the kind its link expects), the refs the lie touched must not have
// moved, the others must have, and the error must name the cause.

// obj is one object as a stream frame carries it.
type obj struct {
	h       repo.Hash
	kind    repo.Kind
	payload []byte
}

func (o obj) frame() []byte {
	return append([]byte(fmt.Sprintf("%s %s %d\n", o.h, o.kind, len(o.payload))), o.payload...)
}

// parseFrames splits a batch or pack body into objects (the test's own
// parser, so a client bug cannot hide behind a shared one).
func parseFrames(body []byte) ([]obj, error) {
	var out []obj
	br := bufio.NewReader(bytes.NewReader(body))
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("frame header: %w", err)
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("frame header %q", line)
		}
		h, err := repo.ParseHash(f[0])
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, err
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return nil, err
		}
		out = append(out, obj{h: h, kind: repo.Kind(f[1]), payload: p})
	}
}

// realFrames records the real handler's stream for r; ok is false when it
// did not answer 200 with a stream that parses (the lie is then skipped
// and the truth sent).
func realFrames(truth http.Handler, r *http.Request, body []byte) ([]obj, bool) {
	rec, out := record(truth, r, body)
	if rec.Code != http.StatusOK {
		return nil, false
	}
	objs, err := parseFrames(out)
	return objs, err == nil
}

// writeStream answers a batch or pack request with objs, ended by the
// count trailer as a complete stream is.
func writeStream(w http.ResponseWriter, objs []obj) {
	w.Header().Set("Content-Type", wire.ObjectStreamContentType)
	w.Header().Set("Trailer", wire.ObjectCountTrailer)
	w.WriteHeader(http.StatusOK)
	for _, o := range objs {
		_, _ = w.Write(o.frame())
	}
	w.Header().Set(wire.ObjectCountTrailer, strconv.Itoa(len(objs)))
}

// record runs the real handler (truth) on r and returns its status and body.
func record(truth http.Handler, r *http.Request, body []byte) (*httptest.ResponseRecorder, []byte) {
	rec := httptest.NewRecorder()
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	truth.ServeHTTP(rec, r2)
	return rec, rec.Body.Bytes()
}

// liar is a primary whose answers go through lie first: it returns true
// when it wrote the answer itself. truth serves the truth.
func newLiar(t *testing.T, v0 bool, lie func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool) *primary {
	t.Helper()
	return newPrimary(t, v0, func(truth http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if lie != nil && lie(w, r, body, truth) {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			truth.ServeHTTP(w, r)
		})
	})
}

// objectEdit rewrites one object wherever the liar serves it: a pack or
// batch frame, or a GET. ok false: the object is left out (a stream skips
// it; a batch or GET answers 404, as for an object the primary lacks).
type objectEdit func(o obj) (obj, bool)

// lieAbout serves the truth except for victim, edited by edit in the
// responses whose paths are in where (pack, batch, GET).
func lieAbout(victim repo.Hash, edit objectEdit, where ...string) func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
	in := func(p string) bool {
		for _, x := range where {
			if x == p {
				return true
			}
		}
		return false
	}
	return func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
		switch {
		case r.URL.Path == wire.PackPath && in("pack"), r.URL.Path == wire.BatchPath && in("batch"):
			frames, ok := realFrames(truth, r, body)
			if !ok {
				return false
			}
			var objs []obj
			for _, o := range frames {
				if o.h == victim {
					var ok bool
					if o, ok = edit(o); !ok {
						if r.URL.Path == wire.BatchPath {
							http.Error(w, "object "+victim.String()+" not in primary", http.StatusNotFound)
							return true
						}
						continue
					}
				}
				objs = append(objs, o)
			}
			writeStream(w, objs)
			return true
		case r.Method == http.MethodGet && r.URL.Path == "/v0/objects/"+victim.String() && in("get"):
			rec, out := record(truth, r, body)
			o, ok := edit(obj{h: victim, kind: repo.Kind(rec.Header().Get(wire.ObjectKindHeader)), payload: out})
			if !ok {
				http.Error(w, "not found", http.StatusNotFound)
				return true
			}
			w.Header().Set(wire.ObjectKindHeader, string(o.kind))
			_, _ = w.Write(o.payload)
			return true
		}
		return false
	}
}

// someObject returns an object of kind in tip's closure, other than tip.
func someObject(t *testing.T, r *repo.Repo, tip repo.Hash, kind repo.Kind) repo.Hash {
	t.Helper()
	for h := range repotest.Closure(t, r, tip) {
		if k, _, _ := r.Get(h); k == kind && h != tip {
			return h
		}
	}
	t.Fatalf("no %s in the closure of %s", kind, tip.Short())
	return repo.Hash{}
}

// wantFailed asserts err is a PullError failing exactly the refs named
// ("zone/name"), each error mentioning every string in want[ref].
func wantFailed(t *testing.T, err error, want map[string][]string) {
	t.Helper()
	var pe *replicate.PullError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PullError failing %v, got %v", want, err)
	}
	got := map[string]error{}
	for _, f := range pe.Failed {
		got[f.Zone+"/"+f.Name] = f.Err
	}
	if len(got) != len(want) {
		t.Fatalf("failed %v, want exactly %v: %v", keysOf(got), keysOf(want), err)
	}
	for ref, subs := range want {
		e, ok := got[ref]
		if !ok {
			t.Fatalf("%s did not fail: %v", ref, err)
		}
		for _, s := range subs {
			if !strings.Contains(e.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", ref, e, s)
			}
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// wantRefs asserts the local refs (branches and tags) are exactly want.
func wantRefs(t *testing.T, local *repo.Repo, want map[string]repo.Hash) {
	t.Helper()
	got := localRefs(t, local)
	tags, err := local.Tags("")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tags {
		got["tag:"+r.Zone+"/"+r.Name] = r.Hash.String()
	}
	if len(got) != len(want) {
		t.Fatalf("local refs %v, want %v", got, want)
	}
	for k, h := range want {
		if got[k] != h.String() {
			t.Fatalf("local ref %s = %q, want %s (all: %v)", k, got[k], h, got)
		}
	}
}

// twoZones fills a primary with a zone the lies are about and one they
// leave alone; it returns both tips.
func twoZones(t *testing.T, r *repo.Repo) (bad, good repo.Hash) {
	t.Helper()
	return mustSynthetic(t, r, "example.com.", "main", 40), mustSynthetic(t, r, "other.test.", "main", 15)
}

// TestHostilePackStream: a pack stream that omits an object, forges one
// (payload that does not hash to its name), mislabels one (another kind in
// the frame), or sends a tree that contains itself. With an honest batch
// and GET fallback the pull completes the closure from them and converges;
// when the fallback lies the same way, example.com./main fails naming the
// object and the cause, nothing of it is stored, and other.test./main,
// which the same stream carried, still moves.
func TestHostilePackStream(t *testing.T) {
	flip := func(o obj) (obj, bool) {
		p := bytes.Clone(o.payload)
		p[len(p)-1] ^= 0x55
		return obj{o.h, o.kind, p}, true
	}
	for _, tc := range []struct {
		name   string
		victim repo.Kind
		edit   objectEdit
		cause  string // in the error when the fallback lies too
	}{
		{"omits", repo.KindBlob, func(obj) (obj, bool) { return obj{}, false }, "404"},
		{"forges", repo.KindBlob, flip, "failed verification"},
		{"mislabels", repo.KindBlob, func(o obj) (obj, bool) { return obj{o.h, repo.KindTree, o.payload}, true }, "failed verification"},
		{"self-containing-tree", repo.KindTree, func(o obj) (obj, bool) {
			p, err := (&repo.Tree{Entries: []repo.TreeEntry{{Kind: repo.EntrySubtree, Name: "loop", Hash: o.h}}}).Encode()
			if err != nil {
				panic(err)
			}
			return obj{o.h, repo.KindTree, p}, true
		}, "failed verification"},
	} {
		for _, fallback := range []string{"honest", "lying"} {
			t.Run(tc.name+"/"+fallback, func(t *testing.T) {
				var victim repo.Hash
				where := []string{"pack"}
				if fallback == "lying" {
					where = append(where, "batch", "get")
				}
				var lied atomic.Int64
				var lie func(http.ResponseWriter, *http.Request, []byte, http.Handler) bool
				p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
					if r.URL.Path == wire.PackPath {
						lied.Add(1)
					}
					return lie(w, r, body, truth)
				})
				bad, good := twoZones(t, p.repo)
				victim = someObject(t, p.repo, bad, tc.victim)
				lie = lieAbout(victim, tc.edit, where...)
				local := openRepo(t, t.TempDir())
				c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
				res, err := c.PullWith(context.Background(), replicate.PullOptions{})
				if lied.Load() == 0 {
					t.Fatal("the client never asked for a pack")
				}
				if fallback == "honest" {
					if err != nil {
						t.Fatalf("an honest fallback should complete the closure: %v", err)
					}
					assertConverged(t, p.repo, local)
					if want := len(repotest.Closure(t, p.repo, bad, good)); res.Objects != want {
						t.Errorf("stored %d objects, the closures hold %d", res.Objects, want)
					}
					return
				}
				wantFailed(t, err, map[string][]string{"example.com./main": {victim.String(), tc.cause}})
				wantRefs(t, local, map[string]repo.Hash{"other.test./main": good})
				if has, _ := local.Has(victim); has && tc.name != "omits" {
					t.Error("the lied-about object was stored")
				}
				assertSound(t, local)
			})
		}
	}
}

// TestHostilePackJunk: a pack stream that, after the first object, sends
// objects nobody asked for without end. The client stops the stream at
// the first one (a warning naming the primary and the object), stores
// none of them, and gets the rest of the closure from batch and GET. When
// those are down too, the pull fails and says why, naming the stream.
func TestHostilePackJunk(t *testing.T) {
	for _, fallback := range []string{"honest", "down"} {
		t.Run(fallback, func(t *testing.T) {
			var sent atomic.Int64
			var firstJunk repo.Hash
			var once sync.Once
			const maxJunk = 5_000_000 // the liar gives up here; the client must stop it long before
			p := newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
				switch {
				case r.URL.Path == wire.PackPath:
					objs, ok := realFrames(truth, r, body)
					if !ok || len(objs) == 0 {
						return false
					}
					w.Header().Set("Content-Type", wire.ObjectStreamContentType)
					w.Header().Set("Trailer", wire.ObjectCountTrailer)
					w.WriteHeader(http.StatusOK)
					bw := bufio.NewWriter(w)
					_, _ = bw.Write(objs[0].frame())
					for i := 0; i < maxJunk; i++ {
						payload := []byte(fmt.Sprintf("junk %d", i))
						o := obj{repo.HashObject(repo.KindBlob, payload), repo.KindBlob, payload}
						once.Do(func() { firstJunk = o.h })
						if _, err := bw.Write(o.frame()); err != nil {
							return true
						}
						sent.Add(1)
					}
					_ = bw.Flush()
					return true
				case fallback == "down" && (r.URL.Path == wire.BatchPath || strings.HasPrefix(r.URL.Path, "/v0/objects/") && r.Method == http.MethodGet):
					http.Error(w, "nothing here", http.StatusNotFound)
					return true
				}
				return false
			})
			bad, good := twoZones(t, p.repo)
			local := openRepo(t, t.TempDir())
			logs := &memLogger{}
			c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1; o.Logger = logs })
			_, err := c.PullWith(context.Background(), replicate.PullOptions{})
			if n := sent.Load(); n >= maxJunk {
				t.Fatalf("the client read all %d junk objects", n)
			}
			if !logs.has("pack stream", p.url(), firstJunk.String(), "not asked for") {
				t.Errorf("no warning names the primary and the junk object %s: %v", firstJunk.Short(), logs.lines())
			}
			// Not one junk object is stored: the store holds the closures
			// and nothing else.
			want := repotest.Closure(t, p.repo, bad, good)
			n := 0
			if err := local.ForEachObject(func(h repo.Hash, k repo.Kind, _ []byte) error {
				if k == repo.KindSymref {
					return nil // HEAD, written by the first branch moved
				}
				if !want[h] {
					return fmt.Errorf("object %s is not in the closures", h.Short())
				}
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if fallback == "honest" {
				if err != nil {
					t.Fatal(err)
				}
				assertConverged(t, p.repo, local)
				return
			}
			for _, ref := range []string{"example.com./main", "other.test./main"} {
				if !strings.Contains(err.Error(), ref) {
					t.Errorf("error does not name %s: %v", ref, err)
				}
			}
			if !strings.Contains(err.Error(), "pack stream from "+p.url()) || !strings.Contains(err.Error(), firstJunk.String()) {
				t.Errorf("error does not say the stream from %s was stopped at %s: %v", p.url(), firstJunk.Short(), err)
			}
			wantRefs(t, local, map[string]repo.Hash{})
			assertSound(t, local)
			if n > 1 {
				t.Errorf("%d objects stored, want at most the one asked for", n)
			}
		})
	}
}

// memLogger keeps log lines for assertions.
type memLogger struct {
	mu sync.Mutex
	l  []string
}

func (m *memLogger) add(level, msg string, kv ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.l = append(m.l, fmt.Sprint(append([]any{level, msg}, kv...)...))
}
func (m *memLogger) Error(msg string, kv ...any) { m.add("ERROR ", msg, kv...) }
func (m *memLogger) Info(msg string, kv ...any)  { m.add("INFO ", msg, kv...) }
func (m *memLogger) Debug(msg string, kv ...any) { m.add("DEBUG ", msg, kv...) }
func (m *memLogger) Warn(msg string, kv ...any)  { m.add("WARN ", msg, kv...) }

func (m *memLogger) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.l...)
}

// has reports whether one line holds every string.
func (m *memLogger) has(subs ...string) bool {
	for _, l := range m.lines() {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			return true
		}
	}
	return false
}

// copyWithout makes a primary store holding src's objects and refs but
// one object, as a primary whose disk lost it.
func copyWithout(t *testing.T, src, dst *repo.Repo, lost repo.Hash) {
	t.Helper()
	b, err := dst.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	if err := src.ForEachObject(func(h repo.Hash, k repo.Kind, p []byte) error {
		if h == lost {
			return nil
		}
		return b.Put(h, k, p)
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	refs, err := src.Branches("")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if err := dst.UpdateBranch(r.Zone, r.Name, repo.ZeroHash, r.Hash, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHostileStoreLostBlob: a truth primary whose store lost one blob
// (served by the truth server, in every transfer mode). The branch that
// reaches it fails naming it; the other branch moves; the replica is
// sound. This is the pack pull that used to exit 0 onto an incomplete
// closure.
func TestHostileStoreLostBlob(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		full := openRepo(t, t.TempDir())
		// Big enough that the server's pack stream is well under way
		// (its buffer flushed) when its walk reaches the lost blob.
		bad := mustSynthetic(t, full, "example.com.", "main", 10000)
		good := mustSynthetic(t, full, "other.test.", "main", 15)
		lost := someObject(t, full, bad, repo.KindBlob)
		copyWithout(t, full, p.repo, lost)
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		_, err := c.PullWith(context.Background(), replicate.PullOptions{})
		wantFailed(t, err, map[string][]string{"example.com./main": {lost.String(), "missing"}})
		wantRefs(t, local, map[string]repo.Hash{"other.test./main": good})
		assertSound(t, local)
	})
}

// crafted fills a primary with objects the zonegit tools never write but
// a hostile primary may serve, around a truth zone.
type crafted struct {
	t    *testing.T
	r    *repo.Repo
	base repo.Hash // tip of example.com./main (a truth zone)
}

func (c *crafted) put(kind repo.Kind, payload []byte) repo.Hash {
	c.t.Helper()
	h, err := c.r.PutObject(kind, payload)
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

func (c *crafted) tree(es ...repo.TreeEntry) repo.Hash {
	c.t.Helper()
	p, err := (&repo.Tree{Entries: es}).Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return c.put(repo.KindTree, p)
}

func (c *crafted) blob(owner string, ip byte) repo.Hash {
	c.t.Helper()
	p, err := (&repo.Blob{Owner: owner, Class: 1, Type: 1, TTL: 300, RData: [][]byte{{192, 0, 2, ip}}}).Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return c.put(repo.KindBlob, p)
}

// commit commits tree on zone/branch (on top of its tip, if any).
func (c *crafted) commit(zone, branch string, tree repo.Hash) repo.Hash {
	c.t.Helper()
	h, err := repotest.Commit(c.r, zone, branch, tree, "crafted")
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

func (c *crafted) rootTree() repo.Hash {
	c.t.Helper()
	_, p, err := c.r.Get(c.base)
	if err != nil {
		c.t.Fatal(err)
	}
	cm, err := repo.DecodeCommit(p)
	if err != nil {
		c.t.Fatal(err)
	}
	return cm.Tree
}

func newCrafted(t *testing.T, r *repo.Repo) *crafted {
	return &crafted{t: t, r: r, base: mustSynthetic(t, r, "example.com.", "main", 10)}
}

// TestHostileRefKinds: refs must point at commits (a tag may point at an
// annotated tag object leading to one). Branches at a tree and at a blob,
// tags at a tree and at a tag object naming a tree, and a pin naming a
// tree each fail, named, in every mode; the truth branch moves.
func TestHostileRefKinds(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		c := newCrafted(t, p.repo)
		tree := c.rootTree()
		blob := c.blob("x.example.com.", 1)
		sig := repotest.Author
		tagObj := c.put(repo.KindTag, (&repo.Tag{Object: tree, Type: repo.KindTree, Name: "annot", Tagger: sig, Message: "a tree\n"}).Encode())
		for name, h := range map[string]repo.Hash{"at-tree": tree, "at-blob": blob} {
			if err := p.repo.UpdateBranch("example.com.", name, repo.ZeroHash, h, nil); err != nil {
				t.Fatal(err)
			}
		}
		for name, h := range map[string]repo.Hash{"t-tree": tree, "t-annot": tagObj, "t-good": c.base} {
			if err := p.repo.UpdateTag("example.com.", name, repo.ZeroHash, h, nil); err != nil {
				t.Fatal(err)
			}
		}
		local := openRepo(t, t.TempDir())
		cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		pins := map[string]string{"example.com./pinned": tree.String()}
		_, err := cl.PullWith(context.Background(), replicate.PullOptions{Pins: pins})
		want := map[string][]string{
			"example.com./at-tree": {tree.String(), "tree"},
			"example.com./at-blob": {blob.String(), "blob"},
			"example.com./pinned":  {"pin example.com./pinned=" + tree.String(), "tree"},
		}
		wantRefsAfter := map[string]repo.Hash{"example.com./main": c.base}
		if !v0 { // a v0 primary lists no tags
			want["example.com./t-tree"] = []string{tree.String(), "tree"}
			want["example.com./t-annot"] = []string{tagObj.String(), "a tag names a commit"}
			wantRefsAfter["tag:example.com./t-good"] = c.base
		}
		wantFailed(t, err, want)
		wantRefs(t, local, wantRefsAfter)
		assertSound(t, local)
	})
}

// TestHostileUndecodableBlob: a blob that hashes right but does not
// decode, linked from a truth tree, fails its branch (named, "does not
// decode") in every mode and is never stored.
func TestHostileUndecodableBlob(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		c := newCrafted(t, p.repo)
		junk := c.put(repo.KindBlob, []byte("\x01not a wire-format owner name"))
		name := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: junk})
		root := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "bad", Hash: name})
		c.commit("example.com.", "broken", root)
		local := openRepo(t, t.TempDir())
		cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		_, err := cl.PullWith(context.Background(), replicate.PullOptions{})
		wantFailed(t, err, map[string][]string{"example.com./broken": {junk.String(), "does not decode"}})
		wantRefs(t, local, map[string]repo.Hash{"example.com./main": c.base})
		if has, _ := local.Has(junk); has {
			t.Error("the undecodable blob was stored")
		}
		assertSound(t, local)
	})
}

// TestHostileLinkKinds: the kind a link expects is enforced. One tree
// links the same object as a subtree and as a leaf; a leaf points at a
// tree the stream sent earlier (as a subtree elsewhere); a leaf points at
// a tree of the replica's known closure, which a lying walk and pack say
// the replica has. Each fails its branch naming the object, in every mode.
func TestHostileLinkKinds(t *testing.T) {
	type scenario struct {
		branch string
		victim repo.Hash
		// lieKnown: the walk answer and pack leave victim out (it is in
		// the replica's known closure); the replica first pulls pre.
		lieKnown bool
		pre      repo.Hash
	}
	build := map[string]func(c *crafted) scenario{
		"subtree-and-leaf": func(c *crafted) scenario {
			a := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("a.example.com.", 1)})
			root := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: a}, repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: a})
			c.commit("example.com.", "dual", root)
			return scenario{branch: "dual", victim: a}
		},
		"leaf-at-tree-sent-earlier": func(c *crafted) scenario {
			a := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("a.example.com.", 1)})
			b := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: a})
			root := c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: a}, repo.TreeEntry{Kind: repo.EntrySubtree, Name: "b", Hash: b})
			c.commit("example.com.", "earlier", root)
			return scenario{branch: "earlier", victim: a}
		},
		"leaf-at-known-tree": func(c *crafted) scenario {
			a := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("a.example.com.", 1)})
			first := c.commit("example.com.", "known", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "a", Hash: a}))
			c.commit("example.com.", "known", c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: a}))
			return scenario{branch: "known", victim: a, lieKnown: true, pre: first}
		},
	}
	for name, mk := range build {
		t.Run(name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, v0 bool) {
				var sc scenario
				var lying atomic.Bool
				var p *primary
				p = newLiar(t, v0, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
					if !lying.Load() || !sc.lieKnown {
						return false
					}
					switch r.URL.Path {
					case "/v0/objects/walk":
						rec, out := record(truth, r, body)
						var wr replicate.WalkResponse
						if rec.Code != http.StatusOK || json.Unmarshal(out, &wr) != nil {
							return false
						}
						var keep []string
						for _, h := range wr.Missing {
							if h != sc.victim.String() {
								keep = append(keep, h)
							}
						}
						w.Header().Set("Content-Type", "application/json")
						_ = json.NewEncoder(w).Encode(replicate.WalkResponse{Missing: keep})
						return true
					case wire.PackPath:
						// The truth walk refuses to stream a tree as a blob;
						// this primary sends the new commit and its tree,
						// and says nothing of the victim.
						tip := mustBranch(t, p.repo, "example.com.", sc.branch)
						_, cp, _ := p.repo.Get(tip)
						cm, _ := repo.DecodeCommit(cp)
						_, tp, _ := p.repo.Get(cm.Tree)
						writeStream(w, []obj{{tip, repo.KindCommit, cp}, {cm.Tree, repo.KindTree, tp}})
						return true
					}
					return false
				})
				c := newCrafted(t, p.repo)
				sc = mk(c)
				local := openRepo(t, t.TempDir())
				cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
				want := map[string]repo.Hash{"example.com./main": c.base}
				if sc.lieKnown {
					pin := map[string]string{"example.com./" + sc.branch: sc.pre.String()}
					if _, err := cl.PullWith(context.Background(), replicate.PullOptions{Pins: pin}); err != nil {
						t.Fatal(err)
					}
					want["example.com./"+sc.branch] = sc.pre
				}
				lying.Store(true)
				_, err := cl.PullWith(context.Background(), replicate.PullOptions{})
				wantFailed(t, err, map[string][]string{"example.com./" + sc.branch: {sc.victim.String(), "linked as"}})
				wantRefs(t, local, want)
				assertSound(t, local)
			})
		})
	}
}
