package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// vectorIndex is vectors/protocol/index.json.
type vectorIndex struct {
	Index []struct {
		Name    string `json:"name"`
		Request struct {
			Method string `json:"method"`
			Path   string `json:"path"`
			Body   string `json:"body"`
		} `json:"request"`
		Status       int    `json:"status"`
		HeadersFile  string `json:"response_headers_file"`
		BodyFile     string `json:"response_body_file"`
		ContentType  string `json:"response_content_type"`
		ObjectKind   string `json:"object_kind"`
		ResponseBody []byte `json:"-"`
	} `json:"index"`
	Errors []struct {
		Case        string  `json:"case"`
		Method      string  `json:"method"`
		Path        string  `json:"path"`
		RequestBody *string `json:"request_body"`
		Status      int     `json:"status"`
		ContentType string  `json:"content_type"`
		ObjectKind  *string `json:"x_object_kind"`
		Body        string  `json:"body"`
	} `json:"error_and_edge_cases"`
}

func readVectorIndex(t *testing.T) (*vectorIndex, string) {
	t.Helper()
	dir := filepath.Join(repotest.VectorsDir(t), "protocol")
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx vectorIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("parse index.json: %v", err)
	}
	if len(idx.Index) == 0 || len(idx.Errors) != 23 {
		t.Fatalf("index.json: %d samples and %d error cases, want >0 and 23", len(idx.Index), len(idx.Errors))
	}
	return &idx, dir
}

// dumpServer serves the upstream repository dump (opened read-only, as
// serve does) over real loopback HTTP.
func dumpServer(t *testing.T, s *Server) (*httptest.Server, *repotest.Dump, *repo.Repo) {
	t.Helper()
	dir := t.TempDir()
	d := repotest.LoadDump(t, dir)
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	s.SnapshotFn = func() (*repo.Repo, error) { return r, nil }
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, d, r
}

// do sends one request and returns the response together with its whole
// body, which it has already read and closed: callers only look at the
// status and headers of the returned response.
//
//bodyclose:handled
func do(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

// headerFile parses a captured raw header block.
func headerFile(t *testing.T, path string) http.Header {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for i, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if i == 0 || line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if ok {
			h.Add(k, v)
		}
	}
	return h
}

func missingSet(t *testing.T, body []byte) map[string]bool {
	t.Helper()
	var wr wire.WalkResponse
	if err := json.Unmarshal(body, &wr); err != nil {
		t.Fatalf("walk response %q: %v", clipBytes(body), err)
	}
	if wr.Missing == nil {
		t.Fatalf("walk response %q: missing is null, want a list", clipBytes(body))
	}
	set := map[string]bool{}
	for _, h := range wr.Missing {
		if set[h] {
			t.Errorf("walk response lists %s twice", h)
		}
		set[h] = true
	}
	return set
}

func clipBytes(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// TestServerReplaysDaemonVectors replays every captured request against
// our server in v0-only mode and compares with the real daemon's answers.
func TestServerReplaysDaemonVectors(t *testing.T) {
	idx, dir := readVectorIndex(t)
	ts, _, _ := dumpServer(t, &Server{V0Only: true})

	for _, v := range idx.Index {
		t.Run(v.Name, func(t *testing.T) {
			var body io.Reader
			if v.Request.Body != "" {
				body = strings.NewReader(v.Request.Body)
			}
			resp, got := do(t, v.Request.Method, ts.URL+v.Request.Path, body)
			if resp.StatusCode != v.Status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, v.Status, clipBytes(got))
			}
			want, err := os.ReadFile(filepath.Join(dir, v.BodyFile))
			if err != nil {
				t.Fatal(err)
			}
			wantHdr := headerFile(t, filepath.Join(dir, v.HeadersFile))
			for _, k := range []string{"Content-Type", wire.ObjectKindHeader} {
				if g, w := resp.Header.Get(k), wantHdr.Get(k); g != w {
					t.Errorf("%s %q, want %q", k, g, w)
				}
			}
			for _, k := range []string{wire.CapabilitiesHeader, "Cache-Control", "ETag"} {
				if g := resp.Header.Get(k); g != "" {
					t.Errorf("v0-only server sent %s: %q", k, g)
				}
			}
			if strings.HasPrefix(v.Name, "walk") {
				if !bytes.HasSuffix(got, []byte("\n")) {
					t.Errorf("walk body does not end with a newline")
				}
				if g, w := missingSet(t, got), missingSet(t, want); !sameSet(g, w) {
					t.Errorf("walk missing %d hashes, want %d: got %v want %v", len(g), len(w), g, w)
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("body differs from %s:\n got %q\nwant %q", v.BodyFile, clipBytes(got), clipBytes(want))
			}
		})
	}

	for _, e := range idx.Errors {
		t.Run(e.Case, func(t *testing.T) {
			var body io.Reader
			if e.RequestBody != nil {
				body = strings.NewReader(*e.RequestBody)
			}
			resp, got := do(t, e.Method, ts.URL+e.Path, body)
			if resp.StatusCode != e.Status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, e.Status, clipBytes(got))
			}
			if ct := resp.Header.Get("Content-Type"); ct != e.ContentType {
				t.Errorf("Content-Type %q, want %q", ct, e.ContentType)
			}
			wantKind := ""
			if e.ObjectKind != nil {
				wantKind = *e.ObjectKind
			}
			if k := resp.Header.Get(wire.ObjectKindHeader); k != wantKind {
				t.Errorf("%s %q, want %q", wire.ObjectKindHeader, k, wantKind)
			}
			switch {
			case e.Path == "/" || e.Path == "/v0/nope":
				// The banner text names the program; only its presence is protocol.
				if !strings.Contains(string(got), "/v0") {
					t.Errorf("banner %q does not mention /v0", got)
				}
			case e.Status == http.StatusOK && strings.HasSuffix(e.Path, "/walk"):
				if g, w := missingSet(t, got), missingSet(t, []byte(e.Body)); !sameSet(g, w) {
					t.Errorf("walk missing %v, want %v", g, w)
				}
			default:
				// Error texts are informational in the protocol, but ours
				// are the daemon's, which helps people comparing logs.
				if string(got) != e.Body {
					t.Errorf("body %q, want %q", clipBytes(got), clipBytes([]byte(e.Body)))
				}
			}
		})
	}
}

// TestServerWalkMatchesClosureDifference checks the walk against the
// definition (closure(roots) minus closure(known)) computed from the dump,
// for every pair of commits in it.
func TestServerWalkMatchesClosureDifference(t *testing.T) {
	ts, _, r := dumpServer(t, &Server{V0Only: true})
	var commits []repo.Hash
	err := r.ForEachObject(func(h repo.Hash, kind repo.Kind, _ []byte) error {
		if kind == repo.KindCommit {
			commits = append(commits, h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 3 {
		t.Fatalf("dump has %d commits, want 3", len(commits))
	}
	for _, root := range commits {
		for _, known := range append([]repo.Hash{repo.ZeroHash}, commits...) {
			req := wire.WalkRequest{Roots: []string{root.String()}, Known: []string{}}
			if !known.IsZero() {
				req.Known = append(req.Known, known.String())
			}
			body, _ := json.Marshal(req)
			resp, got := do(t, http.MethodPost, ts.URL+"/v0/objects/walk", bytes.NewReader(body))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("walk %s known %s: status %d %q", root.Short(), known.Short(), resp.StatusCode, got)
			}
			want := map[string]bool{}
			for h := range repotest.Closure(t, r, root) {
				want[h.String()] = true
			}
			if !known.IsZero() {
				for h := range repotest.Closure(t, r, known) {
					delete(want, h.String())
				}
			}
			if g := missingSet(t, got); !sameSet(g, want) {
				t.Errorf("walk %s known %s: %d missing, want %d", root.Short(), known.Short(), len(g), len(want))
			}
		}
	}
}

func TestServerExtensions(t *testing.T) {
	ts, d, r := dumpServer(t, &Server{})
	main := d.Branches["main"]

	t.Run("refs", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, ts.URL+"/v0/refs", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := resp.Header.Get(wire.CapabilitiesHeader); got != "batch, tags, pack" {
			t.Errorf("%s = %q", wire.CapabilitiesHeader, got)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("Cache-Control = %q", got)
		}
		var rr wire.RefsResponse
		if err := json.Unmarshal(body, &rr); err != nil {
			t.Fatal(err)
		}
		if len(rr.Branches) != 2 || rr.Branches[1].Hash != main || len(rr.Tags) != 0 {
			t.Errorf("refs = %+v", rr)
		}
	})

	t.Run("tags", func(t *testing.T) {
		dir := t.TempDir()
		w, err := repo.Open(dir, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		c, err := repotest.SyntheticZone(w, "example.org.", "main", 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.UpdateTag("example.org.", "v1", repo.ZeroHash, c, nil); err != nil {
			t.Fatal(err)
		}
		for _, v0 := range []bool{false, true} {
			ts := httptest.NewServer((&Server{V0Only: v0, SnapshotFn: func() (*repo.Repo, error) { return w, nil }}).Handler())
			_, body := do(t, http.MethodGet, ts.URL+"/v0/refs", nil)
			ts.Close()
			want := `{"zones":["example.org."],"branches":[{"zone":"example.org.","name":"main","hash":"` + c.String() + `"}]`
			if !v0 {
				want += `,"tags":[{"zone":"example.org.","name":"v1","hash":"` + c.String() + `"}]`
			}
			if string(body) != want+"}\n" {
				t.Errorf("v0only=%v: refs %s, want %s}", v0, body, want)
			}
		}
	})

	t.Run("object cache headers", func(t *testing.T) {
		url := ts.URL + "/v0/objects/" + main
		resp, body := do(t, http.MethodGet, url, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get(wire.ObjectKindHeader) != "commit" {
			t.Fatalf("status %d kind %q", resp.StatusCode, resp.Header.Get(wire.ObjectKindHeader))
		}
		if repo.HashObject(repo.KindCommit, body).String() != main {
			t.Fatalf("body does not hash to %s", main)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("Cache-Control = %q", got)
		}
		if got := resp.Header.Get("ETag"); got != `"`+main+`"` {
			t.Errorf("ETag = %q", got)
		}
		for _, inm := range []string{`"` + main + `"`, `W/"` + main + `", "x"`, `"x", "` + strings.ToUpper(main) + `"`, "*"} {
			resp, body = do(t, http.MethodGet, url, nil, "If-None-Match", inm)
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("If-None-Match %s: status %d, %d bytes", inm, resp.StatusCode, len(body))
			}
		}
		resp, _ = do(t, http.MethodGet, url, nil, "If-None-Match", `"`+strings.Repeat("0", 64)+`"`)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("non-matching If-None-Match: status %d", resp.StatusCode)
		}
	})

	t.Run("batch", func(t *testing.T) {
		all := repotest.Closure(t, r, repo.MustParseHash(main))
		var hashes []string
		for h := range all {
			hashes = append(hashes, strings.ToUpper(h.String())) // uppercase accepted
		}
		sort.Strings(hashes)
		distinct := len(hashes)
		hashes = append(hashes, hashes[0]) // a duplicate is served once
		body, _ := json.Marshal(wire.BatchRequest{Hashes: hashes})
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v0/objects/batch", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != wire.ObjectStreamContentType {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		frames := readFrames(t, resp.Body)
		if len(frames) != distinct {
			t.Fatalf("%d frames, want %d", len(frames), distinct)
		}
		for i, f := range frames {
			if f.hash.String() != strings.ToLower(hashes[i]) {
				t.Errorf("frame %d is %s, want %s (request order)", i, f.hash, hashes[i])
			}
		}
		if got := resp.Trailer.Get(wire.ObjectCountTrailer); got != strconv.Itoa(distinct) {
			t.Errorf("trailer %s = %q, want %d", wire.ObjectCountTrailer, got, distinct)
		}
	})

	t.Run("batch unknown hash", func(t *testing.T) {
		unknown := strings.Repeat("1", 64)
		body, _ := json.Marshal(wire.BatchRequest{Hashes: []string{main, unknown}})
		resp, got := do(t, http.MethodPost, ts.URL+"/v0/objects/batch", bytes.NewReader(body))
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(got), unknown) {
			t.Errorf("status %d body %q, want 404 naming %s", resp.StatusCode, got, unknown)
		}
	})

	t.Run("pack", func(t *testing.T) {
		c1 := parentOf(t, r, repo.MustParseHash(main))
		body, _ := json.Marshal(wire.WalkRequest{Roots: []string{main}, Known: []string{c1.String()}})
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v0/objects/pack", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		frames := readFrames(t, resp.Body)
		// Same objects as the daemon's incremental walk, each before the
		// objects it links to.
		want := repotest.Closure(t, r, repo.MustParseHash(main))
		for h := range repotest.Closure(t, r, c1) {
			delete(want, h)
		}
		if len(frames) != len(want) || len(frames) != 5 {
			t.Fatalf("%d frames, want %d (5)", len(frames), len(want))
		}
		pos := map[repo.Hash]int{}
		for i, f := range frames {
			if !want[f.hash] {
				t.Errorf("frame %s not missing", f.hash.Short())
			}
			pos[f.hash] = i
		}
		for _, f := range frames {
			links, _ := repo.Links(f.kind, f.payload)
			for _, l := range links {
				if p, ok := pos[l.Hash]; ok && p < pos[f.hash] {
					t.Errorf("%s framed before its parent object %s", l.Hash.Short(), f.hash.Short())
				}
			}
		}
		if got := resp.Trailer.Get(wire.ObjectCountTrailer); got != "5" {
			t.Errorf("trailer = %q", got)
		}
	})

	t.Run("pack unknown root", func(t *testing.T) {
		resp, got := do(t, http.MethodPost, ts.URL+"/v0/objects/pack", strings.NewReader(`{"roots":["`+strings.Repeat("1", 64)+`"]}`))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d body %q", resp.StatusCode, got)
		}
	})

	t.Run("v0-only has no extension routes", func(t *testing.T) {
		ts0, _, _ := dumpServer(t, &Server{V0Only: true})
		for _, p := range []string{"/v0/objects/batch", "/v0/objects/pack"} {
			resp, got := do(t, http.MethodPost, ts0.URL+p, strings.NewReader(`{"hashes":[]}`))
			if resp.StatusCode != http.StatusMethodNotAllowed || string(got) != "GET only\n" {
				t.Errorf("POST %s: %d %q, want the daemon's 405 GET only", p, resp.StatusCode, got)
			}
		}
	})
}

func parentOf(t *testing.T, r repo.Reader, h repo.Hash) repo.Hash {
	t.Helper()
	_, p, err := r.Get(h)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.DecodeCommit(p)
	if err != nil || len(c.Parents) == 0 {
		t.Fatalf("commit %s: %v, parents %v", h.Short(), err, c)
	}
	return c.Parents[0]
}

type frame struct {
	hash    repo.Hash
	kind    repo.Kind
	payload []byte
}

// readFrames parses the batch/pack framing strictly and verifies each
// object's hash, as a client must.
func readFrames(t *testing.T, body io.Reader) []frame {
	t.Helper()
	br := bufio.NewReader(body)
	var out []frame
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			return out
		}
		if err != nil {
			t.Fatalf("frame %d header: %v (%q)", len(out), err, line)
		}
		f := strings.Fields(strings.TrimSuffix(line, "\n"))
		if len(f) != 3 || len(line) != len(f[0])+len(f[1])+len(f[2])+3 {
			t.Fatalf("frame %d header %q", len(out), line)
		}
		h, err := repo.ParseHash(f[0])
		if err != nil || f[0] != strings.ToLower(f[0]) {
			t.Fatalf("frame %d hash %q: %v", len(out), f[0], err)
		}
		kind, err := repo.ParseKind(f[1])
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 0 {
			t.Fatalf("frame %d length %q", len(out), f[2])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatalf("frame %d payload: %v", len(out), err)
		}
		if repo.HashObject(kind, p) != h {
			t.Fatalf("frame %d: payload does not hash to %s", len(out), h.Short())
		}
		out = append(out, frame{h, kind, p})
	}
}

func TestServerBadInput(t *testing.T) {
	stats := &ServerStats{}
	ts, d, _ := dumpServer(t, &Server{MaxBodyBytes: 1 << 20, MaxWalkHashes: 1000, MaxBatchHashes: 500, Stats: stats})
	main := d.Branches["main"]
	hashes := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = `"` + main + `"`
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"walk malformed json", http.MethodPost, "/v0/objects/walk", `{"roots":[`, 400},
		{"walk wrong type", http.MethodPost, "/v0/objects/walk", `{"roots":"abc"}`, 400},
		{"walk short hash", http.MethodPost, "/v0/objects/walk", `{"roots":["abcd"]}`, 400},
		{"walk non-hex hash", http.MethodPost, "/v0/objects/walk", `{"roots":["` + strings.Repeat("g", 64) + `"]}`, 400},
		{"walk 65 chars", http.MethodPost, "/v0/objects/walk", `{"known":["` + main + `0"]}`, 400},
		{"walk huge body", http.MethodPost, "/v0/objects/walk", `{"roots":[` + strings.Repeat(`"`+main+`",`, 20000) + `""]}`, 413},
		{"walk too many hashes", http.MethodPost, "/v0/objects/walk", `{"roots":[` + hashes(600) + `],"known":[` + hashes(600) + `]}`, 413},
		{"walk PUT", http.MethodPut, "/v0/objects/walk", `{}`, 405},
		{"walk DELETE", http.MethodDelete, "/v0/objects/walk", ``, 405},
		{"batch malformed", http.MethodPost, "/v0/objects/batch", `[]`, 400},
		{"batch bad hash", http.MethodPost, "/v0/objects/batch", `{"hashes":["xyz"]}`, 400},
		{"batch too many", http.MethodPost, "/v0/objects/batch", `{"hashes":[` + hashes(501) + `]}`, 413},
		{"batch GET", http.MethodGet, "/v0/objects/batch", ``, 405},
		{"pack GET", http.MethodGet, "/v0/objects/pack", ``, 405},
		{"pack bad hash", http.MethodPost, "/v0/objects/pack", `{"roots":["` + main[:63] + `"]}`, 400},
		{"refs PUT", http.MethodPut, "/v0/refs", ``, 405},
		{"object with slash", http.MethodGet, "/v0/objects/" + main + "/x", ``, 400},
		{"object DELETE", http.MethodDelete, "/v0/objects/" + main, ``, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, c.method, ts.URL+c.path, strings.NewReader(c.body))
			if resp.StatusCode != c.status {
				t.Errorf("status %d (%q), want %d", resp.StatusCode, clipBytes(body), c.status)
			}
			if len(body) > 1024 {
				t.Errorf("error body of %d bytes echoes too much input", len(body))
			}
			// Still healthy: a normal request works right after.
			resp, _ = do(t, http.MethodGet, ts.URL+"/v0/objects/"+main, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("server unhealthy after %s: status %d", c.name, resp.StatusCode)
			}
		})
	}
	if stats.ServerErrors.Load() != 0 {
		t.Errorf("%d server errors for bad input", stats.ServerErrors.Load())
	}
	if got := stats.ClientErrors.Load(); got != int64(len(cases)) {
		t.Errorf("%d client errors counted, want %d", got, len(cases))
	}
}

func TestServerWalkResponseCap(t *testing.T) {
	ts, d, _ := dumpServer(t, &Server{MaxWalkMissing: 10})
	body := `{"roots":["` + d.Branches["main"] + `"]}`
	resp, got := do(t, http.MethodPost, ts.URL+"/v0/objects/walk", strings.NewReader(body))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("walk of 36 objects with a cap of 10: status %d %q", resp.StatusCode, got)
	}
	// Pack streams, so the cap does not apply to it.
	resp, _ = do(t, http.MethodPost, ts.URL+"/v0/objects/pack", strings.NewReader(body))
	if resp.StatusCode != http.StatusOK || resp.Trailer.Get(wire.ObjectCountTrailer) != "36" {
		t.Errorf("pack: status %d, trailer %q", resp.StatusCode, resp.Trailer.Get(wire.ObjectCountTrailer))
	}
}

func TestServerTokenAuth(t *testing.T) {
	ts, _, _ := dumpServer(t, &Server{Token: "s3cret"})
	for _, c := range []struct {
		name, auth string
		status     int
	}{
		{"none", "", 401},
		{"wrong", "Bearer nope", 401},
		{"prefix of token", "Bearer s3cre", 401},
		{"basic scheme", "Basic s3cret", 401},
		{"right", "Bearer s3cret", 200},
		{"scheme case-insensitive", "bearer s3cret", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.auth != "" {
				hdr = []string{"Authorization", c.auth}
			}
			resp, body := do(t, http.MethodGet, ts.URL+"/v0/refs", nil, hdr...)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.status == 401 {
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if strings.Contains(string(body), "s3cret") {
					t.Error("401 body mentions the token")
				}
			}
		})
	}
}

func TestServerSnapshotUnavailable(t *testing.T) {
	s := &Server{Snapshots: unavailable{}}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	resp, _ := do(t, http.MethodGet, ts.URL+"/v0/refs", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

type unavailable struct{}

func (unavailable) Acquire() (*repo.Repo, func(), error) {
	return nil, nil, fmt.Errorf("%w: writer active", ErrSnapshotUnavailable)
}

func TestBatchResponseLimit(t *testing.T) {
	for _, tc := range []struct{ req, max, want int64 }{
		{67, 256 << 20, 16 << 20},                  // one hash: the floor, one large object fits
		{1 << 20, 256 << 20, 256 << 20},            // a client chunk: 256 bytes per request byte
		{100 << 10, 256 << 20, 100 << 10 * 256},    // between floor and cap
		{8 << 20, 256 << 20, 256 << 20},            // the largest request: the absolute cap
		{67, 4 << 10, 4 << 10},                     // a cap below the floor wins
		{3400000, defaultMaxBatchBytes, 256 << 20}, // the 3.4 MB attack request
	} {
		if got := batchResponseLimit(tc.req, tc.max); got != tc.want {
			t.Errorf("batchResponseLimit(%d, %d) = %d, want %d", tc.req, tc.max, got, tc.want)
		}
	}
}
