package replicate_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// mustTag writes an annotated tag of commit c on the primary and returns
// the tag object's hash.
func mustTag(t testing.TB, r *repo.Repo, zone, name string, c repo.Hash) repo.Hash {
	t.Helper()
	tag := &repo.Tag{Object: c, Type: repo.KindCommit, Name: name, Tagger: repotest.Author, Message: "release " + name + "\n"}
	h, err := r.PutObject(repo.KindTag, tag.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateTag(zone, name, repo.ZeroHash, h, nil); err != nil {
		t.Fatal(err)
	}
	return h
}

// tagSet lists a repository's tags as sorted "<zone>/<name>" keys.
func tagSet(t testing.TB, r *repo.Repo) []string {
	t.Helper()
	tags, err := r.Tags("")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tg := range tags {
		out = append(out, tg.Zone+"/"+tg.Name)
	}
	sort.Strings(out)
	return out
}

func wantTags(t testing.TB, r *repo.Repo, step string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := tagSet(t, r); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: local tags %v, want %v", step, got, want)
	}
}

// prunedTags are the tag results of a pull that report a prune.
func prunedTags(res *replicate.PullResult) map[string]replicate.BranchResult {
	out := map[string]replicate.BranchResult{}
	for _, b := range res.Branches {
		if b.Tag && b.Pruned {
			out[b.Zone+"/"+b.Name] = b
		}
	}
	return out
}

// TestE2ETagPrune: a tag deleted on the primary is deleted locally by a
// pull with Prune, within the zone filter only, and reported as a pruned
// tag; without Prune it stays; and a primary that does not list tags (a
// v0 daemon, or a client told to speak v0) never prunes one, since its
// silence about tags says nothing.
func TestE2ETagPrune(t *testing.T) {
	ctx := context.Background()
	p := newPrimary(t, false, nil)
	c1 := mustSynthetic(t, p.repo, "example.com.", "main", 10)
	o1 := mustSynthetic(t, p.repo, "other.org.", "main", 5)
	v1 := mustTag(t, p.repo, "example.com.", "v1", c1)
	mustTag(t, p.repo, "example.com.", "v2", c1)
	r1 := mustTag(t, p.repo, "other.org.", "r1", o1)

	localA := openRepo(t, t.TempDir())
	localB := openRepo(t, t.TempDir())
	for _, l := range []*repo.Repo{localA, localB} {
		if _, err := newClient(t, p.url(), l, nil).PullWith(ctx, replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		wantTags(t, l, "first pull", "example.com./v1", "example.com./v2", "other.org./r1")
	}

	// The primary deletes v1 and r1.
	if err := p.repo.UpdateTag("example.com.", "v1", v1, repo.ZeroHash, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.repo.UpdateTag("other.org.", "r1", r1, repo.ZeroHash, nil); err != nil {
		t.Fatal(err)
	}

	// Without Prune, nothing is deleted.
	res, err := newClient(t, p.url(), localA, nil).PullWith(ctx, replicate.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr := prunedTags(res); len(pr) != 0 {
		t.Errorf("pull without Prune reports pruned tags %v", pr)
	}
	wantTags(t, localA, "pull without Prune", "example.com./v1", "example.com./v2", "other.org./r1")

	// A v0 primary over the same repository lists no tags: Prune deletes
	// none of them (and no branch: they are all still there).
	p0 := newPrimary(t, true, nil)
	p0.repo = p.repo
	res, err = newClient(t, p0.url(), localB, nil).PullWith(ctx, replicate.PullOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if pr := prunedTags(res); len(pr) != 0 {
		t.Errorf("pull with Prune from a v0 primary reports pruned tags %v", pr)
	}
	wantTags(t, localB, "Prune against a v0 primary", "example.com./v1", "example.com./v2", "other.org./r1")
	// Same for our primary when the client ignores its extensions.
	if _, err := newClient(t, p.url(), localB, func(o *replicate.ClientOptions) { o.V0Only = true }).
		PullWith(ctx, replicate.PullOptions{Prune: true}); err != nil {
		t.Fatal(err)
	}
	wantTags(t, localB, "Prune with a V0Only client", "example.com./v1", "example.com./v2", "other.org./r1")

	// With Prune and a zone filter, only the selected zone's tag goes.
	res, err = newClient(t, p.url(), localA, nil).PullWith(ctx, replicate.PullOptions{Prune: true, Zones: []string{"example.*"}})
	if err != nil {
		t.Fatal(err)
	}
	pr := prunedTags(res)
	if b, ok := pr["example.com./v1"]; len(pr) != 1 || !ok || b.Old != v1.String() || b.New != "" || b.Err != nil {
		t.Errorf("pruned tags %+v, want example.com./v1 (was %s)", pr, v1.Short())
	}
	wantTags(t, localA, "Prune within example.*", "example.com./v2", "other.org./r1")
	log, err := localA.Reflog(repo.TagRef("example.com.", "v1"))
	if err != nil || len(log) == 0 || !log[len(log)-1].New.IsZero() || !strings.Contains(log[len(log)-1].Message, "prune") {
		t.Errorf("reflog of the pruned tag: %+v, %v", log, err)
	}

	// Without a filter, the other zone's tag goes too; branches stay.
	res, err = newClient(t, p.url(), localA, nil).PullWith(ctx, replicate.PullOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if pr := prunedTags(res); len(pr) != 1 || pr["other.org./r1"].Old != r1.String() {
		t.Errorf("pruned tags %+v, want other.org./r1", pr)
	}
	wantTags(t, localA, "Prune everywhere", "example.com./v2")
	assertConverged(t, p.repo, localA)

	// Nothing left to prune: a repeat reports none.
	res, err = newClient(t, p.url(), localA, nil).PullWith(ctx, replicate.PullOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if pr := prunedTags(res); len(pr) != 0 {
		t.Errorf("repeat pull reports pruned tags %v", pr)
	}
}
