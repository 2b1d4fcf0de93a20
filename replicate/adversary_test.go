package replicate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// Adversary attacks on the client transfer engine. Each test names the
// attack and the promise it checks: every object received is verified,
// refs move only onto complete closures of the right kinds, nothing is
// stored that the walk did not ask for, errors name the cause.

// TestAdversaryPrimaryLostTree: a primary whose store lost one tree of
// example.com./main (a damaged disk, served by the truth server). The
// promise (README, package doc): "a branch that fails is reported, the
// others still apply" -- other.test./main, whose closure is whole, must
// move in every mode. The walk request holds both roots and the primary
// answers 500 for it; the client narrows a 5xx down to its root like a
// 404 (walkAll), so only the damaged branch fails.
func TestAdversaryPrimaryLostTree(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		full := openRepo(t, t.TempDir())
		bad := mustSynthetic(t, full, "example.com.", "main", 200)
		good := mustSynthetic(t, full, "other.test.", "main", 15)
		lost := someObject(t, full, bad, repo.KindTree)
		copyWithout(t, full, p.repo, lost)
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		_, err := c.PullWith(context.Background(), replicate.PullOptions{})
		wantFailed(t, err, map[string][]string{"example.com./main": {lost.String()}})
		wantRefs(t, local, map[string]repo.Hash{"other.test./main": good})
		assertSound(t, local)
	})
}

// refsLiar serves refs (and the truth otherwise).
func refsLiar(t *testing.T, refs func(truth replicate.RefsResponse) replicate.RefsResponse) *primary {
	return newLiar(t, false, func(w http.ResponseWriter, r *http.Request, body []byte, truth http.Handler) bool {
		if r.URL.Path != "/v0/refs" {
			return false
		}
		rec, out := record(truth, r, body)
		var rr replicate.RefsResponse
		if err := json.Unmarshal(out, &rr); err != nil {
			return false
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		_ = json.NewEncoder(w).Encode(refs(rr))
		return true
	})
}

// TestAdversaryRefsHostileNames: /v0/refs listing zones and branches with
// control characters and path tricks. The pull must not store such refs
// nor print them raw (issue 7 item 16: names from the primary are printed
// raw), and the truth branch moves. Every message naming a primary's ref
// goes through replicate.DisplayName (BranchError, the CLI, the provider's
// diagnostics), so a newline or ESC in a name cannot forge a line.
func TestAdversaryRefsHostileNames(t *testing.T) {
	var good repo.Hash
	p := refsLiar(t, func(rr replicate.RefsResponse) replicate.RefsResponse {
		h := good.String()
		rr.Branches = append(rr.Branches,
			replicate.Branch{Zone: "evil\x1b[31m.", Name: "main", Hash: h},
			replicate.Branch{Zone: "nl\nzone.", Name: "main", Hash: h},
			replicate.Branch{Zone: "example.com.", Name: "../../x", Hash: h},
			replicate.Branch{Zone: "example.com.", Name: "a\x00b", Hash: h},
			replicate.Branch{Zone: "example.com.", Name: "", Hash: h},
		)
		rr.Zones = append(rr.Zones, "evil\x1b[31m.", "nl\nzone.")
		return rr
	})
	_, good = twoZones(t, p.repo)
	local := openRepo(t, t.TempDir())
	logs := &memLogger{}
	c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1; o.Logger = logs })
	_, err := c.PullWith(context.Background(), replicate.PullOptions{})
	if err != nil && strings.ContainsAny(err.Error(), "\x1b\x00") {
		t.Errorf("error prints a primary's name raw: %q", err)
	}
	for _, l := range logs.lines() {
		if strings.ContainsAny(l, "\x1b\x00\n") {
			t.Errorf("log line prints a primary's name raw: %q", l)
		}
	}
	for k := range localRefs(t, local) {
		if strings.ContainsAny(k, "\x1b\x00\n") || strings.Contains(k, "..") || strings.HasSuffix(k, "/") {
			t.Errorf("hostile ref stored: %q", k)
		}
	}
	if got := localRefs(t, local)["other.test./main"]; got != good.String() {
		t.Errorf("truth branch other.test./main = %q, want %s (err %v)", got, good, err)
	}
	assertSound(t, local)
}

// TestAdversaryTagOfTag: a primary tags an annotated tag object that
// itself names a commit (tag -> tag -> commit). A tag object names a
// commit (FORMAT.md), a rule kept in one place, repo.DecodeTag, which the
// pull, the walk and fsck all use: the pull refuses the chain and names
// it, and fsck passes on what it leaves.
func TestAdversaryTagOfTag(t *testing.T) {
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		c := newCrafted(t, p.repo)
		inner := c.put(repo.KindTag, (&repo.Tag{Object: c.base, Type: repo.KindCommit, Name: "inner", Tagger: repotest.Author, Message: "names a commit\n"}).Encode())
		outer := c.put(repo.KindTag, (&repo.Tag{Object: inner, Type: repo.KindTag, Name: "chain", Tagger: repotest.Author, Message: "names a tag\n"}).Encode())
		if err := p.repo.UpdateTag("example.com.", "chain", repo.ZeroHash, outer, nil); err != nil {
			t.Fatal(err)
		}
		local := openRepo(t, t.TempDir())
		cl := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryAttempts = 1 })
		_, err := cl.PullWith(context.Background(), replicate.PullOptions{})
		if err != nil {
			// Refusing the chain is one acceptable answer: it must name it.
			wantFailed(t, err, map[string][]string{"example.com./chain": {outer.Short()}})
		}
		assertSound(t, local) // repo.Fsck on the replica
	})
}
