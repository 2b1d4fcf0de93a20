package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// TestServeEdgeAnswers pins what the serve binary answers on the edges of
// the protocol that the daemon's vectors do not show: odd methods and
// paths, hashes in upper case or twice, empty and oversized bodies, and
// the extension endpoints with extensions on and off. Status, Content-Type
// and body are compared byte for byte; a walk answer as a set (its order
// is arbitrary). The answers are those of the serve command both before
// and after the protocol code was split into packages.
func TestServeEdgeAnswers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	zones := filepath.Join(repotest.VectorsDir(t), "zones")
	var tip string
	for _, z := range []struct{ zone, file string }{{"example.com.", "example.zone"}, {"types.test.", "types.zone"}} {
		var out bytes.Buffer
		if code := dispatch(context.Background(), []string{"import", "--repo", dir, "--zone", z.zone, "--file", filepath.Join(zones, z.file)}, &out, io.Discard); code != 0 {
			t.Fatalf("import %s: exit %d", z.file, code)
		}
		if z.zone == "example.com." {
			tip = strings.TrimPrefix(strings.SplitN(out.String(), "\n", 2)[0], "commit ")
		}
	}
	if _, err := repo.ParseHash(tip); err != nil {
		t.Fatalf("import printed no commit: %v", err)
	}
	unknown := strings.Repeat("ab", 32)
	zero := strings.Repeat("0", 64)
	walkBody := func(roots ...string) string {
		b, _ := json.Marshal(wire.WalkRequest{Roots: roots})
		return string(b)
	}
	hashes := func(n int) string {
		return `{"known":[` + strings.TrimSuffix(strings.Repeat(`"`+unknown+`",`, n), ",") + `]}`
	}
	const text = "text/plain; charset=utf-8"
	type answer struct {
		status int
		ctype  string
		body   string // "" with set: the walk answer of walkOf
		walkOf []string
	}
	type tc struct {
		name, method, path, body string
		want                     answer
	}
	both := []tc{
		{"HEAD refs", http.MethodHead, "/v0/refs", "", answer{405, text, "", nil}},
		{"HEAD object", http.MethodHead, "/v0/objects/" + tip, "", answer{405, text, "", nil}},
		{"object with a query", http.MethodGet, "/v0/objects/" + tip + "?x=1", "", answer{200, "application/octet-stream", "=object", nil}},
		{"object trailing slash", http.MethodGet, "/v0/objects/" + tip + "/", "", answer{400, text, "bad hash: hash must be 64 hex chars, got 65: invalid object\n", nil}},
		{"walk empty body", http.MethodPost, "/v0/objects/walk", "", answer{400, text, "decode: EOF\n", nil}},
		{"walk upper case", http.MethodPost, "/v0/objects/walk", walkBody(strings.ToUpper(tip)), answer{200, "application/json", "", []string{tip}}},
		{"walk root twice", http.MethodPost, "/v0/objects/walk", walkBody(tip, strings.ToUpper(tip), zero), answer{200, "application/json", "", []string{tip}}},
		{"walk roots not a list", http.MethodPost, "/v0/objects/walk", `{"roots":"x"}`, answer{400, text, "decode: json: cannot unmarshal string into Go struct field WalkRequest.roots of type []string\n", nil}},
		{"walk too many hashes", http.MethodPost, "/v0/objects/walk", hashes(100001), answer{413, text, "100001 hashes in one request, the limit is 100000: split the request\n", nil}},
		{"walk body too large", http.MethodPost, "/v0/objects/walk", `{"x":"` + strings.Repeat("a", 9<<20) + `"}`, answer{413, text, "request body exceeds 8388608 bytes\n", nil}},
	}
	ext := []tc{
		{"batch twice and upper case", http.MethodPost, "/v0/objects/batch", `{"hashes":["` + tip + `","` + strings.ToUpper(tip) + `"]}`, answer{200, wire.ObjectStreamContentType, "=frame", nil}},
		{"batch zero hash", http.MethodPost, "/v0/objects/batch", `{"hashes":["` + zero + `"]}`, answer{404, text, "object " + zero + " not in primary\n", nil}},
		{"batch too many", http.MethodPost, "/v0/objects/batch", `{"hashes":[` + strings.TrimSuffix(strings.Repeat(`"`+tip+`",`, 50001), ",") + `]}`, answer{413, text, "50001 hashes in one request, the limit is 50000: split the request\n", nil}},
		{"pack nothing missing", http.MethodPost, "/v0/objects/pack", `{"roots":["` + tip + `"],"known":["` + tip + `"]}`, answer{200, wire.ObjectStreamContentType, "", nil}},
		{"pack unknown root", http.MethodPost, "/v0/objects/pack", walkBody(unknown), answer{404, text, "root " + unknown[:12] + " not in primary\n", nil}},
	}
	v0 := []tc{
		{"batch on a v0 primary", http.MethodPost, "/v0/objects/batch", `{"hashes":[]}`, answer{405, text, "GET only\n", nil}},
		{"pack on a v0 primary", http.MethodPost, "/v0/objects/pack", walkBody(tip), answer{405, text, "GET only\n", nil}},
		{"GET batch on a v0 primary", http.MethodGet, "/v0/objects/batch", "", answer{400, text, "bad hash: hash must be 64 hex chars, got 5: invalid object\n", nil}},
	}
	for _, mode := range []struct {
		name  string
		args  []string
		cases []tc
		caps  string
	}{
		{"extensions", nil, append(both, ext...), "batch, tags, pack"},
		{"v0-only", []string{"--v0-only"}, append(both, v0...), ""},
	} {
		t.Run(mode.name, func(t *testing.T) {
			url, _, _ := startServe(t, append([]string{"--repo", dir, "--listen", "127.0.0.1:0"}, mode.args...)...)
			_, object := get(t, url+"/v0/objects/"+tip)
			resp, _ := get(t, url+"/v0/refs")
			if got := resp.Header.Get(wire.CapabilitiesHeader); got != mode.caps {
				t.Errorf("%s = %q, want %q", wire.CapabilitiesHeader, got, mode.caps)
			}
			for _, c := range mode.cases {
				req, err := http.NewRequest(c.method, url+c.path, strings.NewReader(c.body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("%s: read: %v", c.name, err)
				}
				if resp.StatusCode != c.want.status || resp.Header.Get("Content-Type") != c.want.ctype {
					t.Errorf("%s: status %d, Content-Type %q; want %d, %q (body %q)", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), c.want.status, c.want.ctype, clip(body))
					continue
				}
				switch {
				case c.want.walkOf != nil:
					_, want := post(t, url+"/v0/objects/walk", walkBody(c.want.walkOf...))
					if g, w := walkSet(t, body), walkSet(t, want); len(g) != len(w) || !sameKeys(g, w) {
						t.Errorf("%s: walk answer %d hashes, want the %d of %v", c.name, len(g), len(w), c.want.walkOf)
					}
					var wr wire.WalkResponse
					if err := json.Unmarshal(body, &wr); err != nil || len(wr.Missing) != len(walkSet(t, body)) {
						t.Errorf("%s: a hash listed twice: %v", c.name, err)
					}
				case c.want.body == "=object":
					if !bytes.Equal(body, object) {
						t.Errorf("%s: body differs from the object", c.name)
					}
				case c.want.body == "=frame":
					if want := tip + " commit " + strconv.Itoa(len(object)) + "\n" + string(object); string(body) != want {
						t.Errorf("%s: stream %q, want one frame of the commit", c.name, clip(body))
					}
				case string(body) != c.want.body:
					t.Errorf("%s: body %q, want %q", c.name, clip(body), c.want.body)
				}
				if c.want.ctype == wire.ObjectStreamContentType && resp.Trailer.Get(wire.ObjectCountTrailer) == "" {
					t.Errorf("%s: no %s trailer", c.name, wire.ObjectCountTrailer)
				}
			}
		})
	}
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

//bodyclose:handled
func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return resp, b
}

//bodyclose:handled
func post(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, err)
	}
	return resp, b
}

func walkSet(t *testing.T, body []byte) map[string]bool {
	t.Helper()
	var wr wire.WalkResponse
	if err := json.Unmarshal(body, &wr); err != nil {
		t.Fatalf("walk answer %q: %v", clip(body), err)
	}
	out := map[string]bool{}
	for _, h := range wr.Missing {
		out[h] = true
	}
	return out
}

func sameKeys(a, b map[string]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return len(a) == len(b)
}
