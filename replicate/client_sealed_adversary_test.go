package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// Attacks on the sealed first pull (verify.go, seal): a first pull of one
// root by pack into a store without objects is proven complete by its
// stream, without the closure walk. Each attack pulls the same thing
// twice: into a store as the attack leaves it (sealed, when the pull
// qualifies), and into the same store holding one unrelated object too,
// which the walk then checks. Both must agree on everything a caller
// sees: the refs, the replica's soundness, which refs failed and why,
// and the per-branch Objects and Bytes.

// pullOutcome is what a caller sees of one pull.
type pullOutcome struct {
	refs     map[string]string
	failed   map[string]string // ref -> error text
	branches map[string][2]int64
	objects  int
	bytes    int64
	proofs   int // closures proven by the stream
}

// pullOnce pulls opts into local after prepare and records the outcome;
// the replica must be sound whatever happened.
func pullOnce(t *testing.T, url string, local *repo.Repo, opts replicate.PullOptions, mod func(*replicate.ClientOptions)) pullOutcome {
	t.Helper()
	log := &proofLog{}
	c := newClient(t, url, local, func(o *replicate.ClientOptions) {
		o.RetryAttempts = 1
		o.Logger = log
		if mod != nil {
			mod(o)
		}
	})
	res, err := c.PullWith(context.Background(), opts)
	out := pullOutcome{refs: localRefs(t, local), failed: map[string]string{}, branches: map[string][2]int64{}, proofs: log.count()}
	tags, terr := local.Tags("")
	if terr != nil {
		t.Fatal(terr)
	}
	for _, r := range tags {
		out.refs["tag:"+r.Zone+"/"+r.Name] = r.Hash.String()
	}
	if err != nil {
		var pe *replicate.PullError
		if !errors.As(err, &pe) {
			t.Fatalf("pull: %v", err)
		}
		for _, f := range pe.Failed {
			out.failed[f.Zone+"/"+f.Name] = f.Err.Error()
		}
	}
	if res == nil {
		t.Fatal("no result")
	}
	out.objects, out.bytes = res.Objects, res.Bytes
	var sumO int
	var sumB int64
	for _, b := range res.Branches {
		key := b.Zone + "/" + b.Name
		if b.Tag {
			key = "tag:" + key
		}
		out.branches[key] = [2]int64{int64(b.Objects), b.Bytes}
		sumO += b.Objects
		sumB += b.Bytes
	}
	// Each object stored is credited to at most one branch.
	if sumO > res.Objects || sumB > res.Bytes {
		t.Errorf("branches credited %d objects/%d bytes in all, the pull stored %d/%d: %+v", sumO, sumB, res.Objects, res.Bytes, res.Branches)
	}
	assertSound(t, local)
	return out
}

// strayObject puts one object no ref reaches, so the store is not empty
// and the pull's closures are walked.
func strayObject(t *testing.T, r *repo.Repo) {
	t.Helper()
	if _, err := r.PutObject(repo.KindBlob, mustBlob(t, "stray.invalid.", 7)); err != nil {
		t.Fatal(err)
	}
}

// sealedVsWalked runs the pull into a fresh store prepared by prepare
// (sealed when it qualifies) and into one prepared the same way plus a
// stray object (walked), and fails on any difference a caller could see.
// wantProof says whether the first pull must be proven by its stream.
func sealedVsWalked(t *testing.T, url string, prepare func(*repo.Repo), opts replicate.PullOptions, mod func(*replicate.ClientOptions), wantProof bool) (sealed, walked pullOutcome) {
	t.Helper()
	a := openRepo(t, t.TempDir())
	if prepare != nil {
		prepare(a)
	}
	sealed = pullOnce(t, url, a, opts, mod)
	b := openRepo(t, t.TempDir())
	if prepare != nil {
		prepare(b)
	}
	strayObject(t, b)
	walked = pullOnce(t, url, b, opts, mod)
	if walked.proofs != 0 {
		t.Fatalf("a store holding an object was proven by the stream")
	}
	if wantProof != (sealed.proofs > 0) {
		t.Errorf("proofs by the stream: %d, want proven %v", sealed.proofs, wantProof)
	}
	if d := diffMaps(sealed.refs, walked.refs); d != "" {
		t.Errorf("refs differ (sealed vs walked): %s", d)
	}
	if d := diffMaps(sealed.failed, walked.failed); d != "" {
		t.Errorf("failures differ (sealed vs walked): %s", d)
	}
	if d := diffMaps(sealed.branches, walked.branches); d != "" {
		t.Errorf("per-branch Objects/Bytes differ (sealed vs walked): %s", d)
	}
	if sealed.objects != walked.objects || sealed.bytes != walked.bytes {
		t.Errorf("pull totals differ: sealed %d/%d, walked %d/%d", sealed.objects, sealed.bytes, walked.objects, walked.bytes)
	}
	return sealed, walked
}

func diffMaps[V comparable](a, b map[string]V) string {
	var ds []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			ds = append(ds, fmt.Sprintf("%s: %v vs %v", k, v, w))
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			ds = append(ds, fmt.Sprintf("%s: (none) vs %v", k, w))
		}
	}
	sort.Strings(ds)
	return strings.Join(ds, "; ")
}

// TestSealedAdversaryKnownRootOtherZone: the store holds no object, only
// a tag (zone stale.test.; a branch would have stored HEAD's symref)
// naming a commit Y it lacks. The primary has example.com./main at X and
// other.test./main at Y, whose trees share a subtree. Y is a local tip,
// so it is no root of the pull: X is the only one. other.test./main is
// checked in later rounds by the walk, which reaches the shared subtree,
// stored by this pull; it was credited to example.com./main, and must not
// be credited again. (Sealed, the proof credited example.com./main with
// every object without marking one, and other.test./main was credited
// the shared subtree a second time: the branches summed to more than the
// pull stored. Such a pull is not sealed now.)
func TestSealedAdversaryKnownRootOtherZone(t *testing.T) {
	p := newPrimary(t, false, nil)
	c := &crafted{t: t, r: p.repo}
	shared := c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("s.example.com.", 1)})
	x := c.commit("example.com.", "main", c.tree(
		repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: shared},
		repo.TreeEntry{Kind: repo.EntrySubtree, Name: "x", Hash: c.tree(repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: c.blob("x.example.com.", 2)})}))
	y := c.commit("other.test.", "main", c.tree(repo.TreeEntry{Kind: repo.EntrySubtree, Name: "s", Hash: shared}))
	refOnly := func(r *repo.Repo) {
		if err := r.UpdateTag("stale.test.", "v1", repo.ZeroHash, y, nil); err != nil {
			t.Fatal(err)
		}
	}
	opts := replicate.PullOptions{Zones: []string{"example.com.", "other.test."}}
	sealed, _ := sealedVsWalked(t, p.url(), refOnly, opts, nil, false)
	if sealed.refs["example.com./main"] != x.String() || sealed.refs["other.test./main"] != y.String() {
		t.Fatalf("refs %v", sealed.refs)
	}
	// Y adds its commit and root tree; the rest is X's.
	yObjs := closureWithout(t, p.repo, repo.ZeroHash, y)
	xObjs := repotest.Closure(t, p.repo, x)
	n := 0
	for h := range yObjs {
		if !xObjs[h] {
			n++
		}
	}
	if got := sealed.branches["other.test./main"][0]; got != int64(n) {
		t.Errorf("other.test./main credited %d objects, its closure adds %d", got, n)
	}
}

var _ = wire.PackPath
var _ http.Handler
