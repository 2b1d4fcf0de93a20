package resources_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/internal/dirstate"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// replicaConfig is one zonegit_replica "test" at dir pulling from url, with
// body added to the resource and retries off (failures in these tests are
// on purpose).
func replicaConfig(url, dir, body string) string {
	return fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
  retry {
    attempts = 0
  }
}

resource "zonegit_replica" "test" {
  path = %q
  %s
}
`, url, dir, body)
}

// hclList writes names as an HCL list of strings, escaping backslashes.
func hclList(names ...string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestAccReplicaResource_exactNamesWithGlobCharacters (issue 8.1): branch
// names holding every glob metacharacter are selected by their exact name,
// escaped names select only themselves, and patterns still work; each plan
// applies as planned.
func TestAccReplicaResource_exactNamesWithGlobCharacters(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	const zone = "example.com."
	names := []string{"rel[1]", "rel1", "a*b", "axb", "q?", "qx", `back\slash`, "backslash", "x[", "y]"}
	hashes := map[string]string{}
	for _, n := range names {
		hashes[zone+"/"+n] = p.commit(zone, n)
	}
	only := func(branches ...string) func() map[string]string {
		return func() map[string]string {
			out := map[string]string{}
			for _, b := range branches {
				out[zone+"/"+b] = hashes[zone+"/"+b]
			}
			return out
		}
	}
	dir := filepath.Join(t.TempDir(), "replica")
	step := func(branches []string, want func() map[string]string) resource.TestStep {
		return resource.TestStep{
			Config: replicaConfig(p.URL, dir, "zones = [\"example.com.\"]\n  prune = true\n  branches = "+hclList(branches...)),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				expectPlannedRefs(replicaAddr, want),
			}},
			ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, want)},
			Check:             checkDisk(t, dir, want),
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			// Exact names: each selects itself, and as a glob what it
			// matches ("rel[1]" also matches rel1; "x[" and "y]" are not
			// valid globs and match only themselves).
			step([]string{"rel[1]", "x[", "y]"}, only("rel[1]", "rel1", "x[", "y]")),
			step([]string{"a*b", "q?", `back\slash`}, only("a*b", "axb", "q?", "qx", `back\slash`, "backslash")),
			// Escaped: exactly those names, the rest pruned.
			step([]string{`rel\[1\]`, `a\*b`, `q\?`, `back\\slash`}, only("rel[1]", "a*b", "q?", `back\slash`)),
			// Patterns.
			step([]string{"rel[0-9]", `[xy][\[\]]`}, only("rel1", "x[", "y]")),
			{
				Config: replicaConfig(p.URL, dir, "zones = [\"example.com.\"]\n  prune = true\n  branches = "+hclList("rel[0-9]", `[xy][\[\]]`)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

// TestAccReplicaResource_pathMustBeReplica (issue 8.2): a directory that
// holds anything but a repository is refused at plan and at import, naming
// it, and nothing is written into it; destroy never deletes a file that is
// not the repository's, and deletes nothing at all when there is one.
func TestAccReplicaResource_pathMustBeReplica(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	base := t.TempDir()

	notes := filepath.Join(base, "notes")
	if err := os.Mkdir(notes, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notes, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	notesBefore := dirstate.Listing(t, notes)
	rootBefore := dirstate.Listing(t, "/")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "replica")
	var replicaFiles string

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkDirGone(dir, "destroy with destroy_data = true left"),
		Steps: []resource.TestStep{
			{
				Config:      replicaConfig(p.URL, notes, ""),
				ExpectError: errorLike("Path is not a zonegit repository", notes, `"notes.txt"`),
			},
			{
				PreConfig: func() {
					if got := dirstate.Listing(t, notes); got != notesBefore {
						t.Fatalf("a refused plan changed %s:\n%s\nwas:\n%s", notes, got, notesBefore)
					}
				},
				Config:      replicaConfig(p.URL, "/", ""),
				ExpectError: errorLike("Path is not a zonegit repository", "/ holds files"),
			},
			// Import refuses anything but a repository with branches.
			{
				PreConfig: func() {
					if got := dirstate.Listing(t, "/"); got != rootBefore {
						t.Fatalf("a refused plan changed /")
					}
				},
				Config:        replicaConfig(p.URL, notes, ""),
				ResourceName:  replicaAddr,
				ImportState:   true,
				ImportStateId: notes,
				ExpectError:   errorLike("Cannot import replica", notes, `"notes.txt"`),
			},
			{
				Config:        replicaConfig(p.URL, empty, ""),
				ResourceName:  replicaAddr,
				ImportState:   true,
				ImportStateId: empty,
				ExpectError:   errorLike("Cannot import replica", empty, "empty directory"),
			},
			{
				Config:        replicaConfig(p.URL, filepath.Join(base, "absent"), ""),
				ResourceName:  replicaAddr,
				ImportState:   true,
				ImportStateId: filepath.Join(base, "absent"),
				ExpectError:   errorLike("Cannot import replica", "Nothing is at", filepath.Join(base, "absent")),
			},
			// An empty directory is fine: the replica is created in it.
			{
				Config: replicaConfig(p.URL, dir, "destroy_data = true"),
				Check: func(*terraform.State) error {
					d, err := repo.InspectDir(dir)
					if err != nil || !d.IsRepository() {
						return fmt.Errorf("replica directory: %+v %v", d, err)
					}
					return nil
				},
			},
			// A file appears in the replica: the plan warns (an error
			// would block destroy too), the apply refuses to write, and
			// destroy deletes nothing.
			{
				PreConfig: func() {
					replicaFiles = dirstate.Listing(t, dir)
					if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
						t.Fatal(err)
					}
				},
				Config:      replicaConfig(p.URL, dir, "destroy_data = true\n  zones = [\"example.com.\"]"),
				ExpectError: errorLike("Path is not a zonegit repository", dir, `"notes.txt"`),
			},
			{
				Config:      replicaConfig(p.URL, dir, "destroy_data = true"),
				Destroy:     true,
				ExpectError: errorLike("Replica directory holds other files", `"notes.txt"`, "deleted nothing"),
			},
			// Everything is still there; with the file moved out, destroy
			// (at the end of the test) removes the replica.
			{
				PreConfig: func() {
					if err := os.Remove(filepath.Join(dir, "notes.txt")); err != nil {
						t.Fatalf("notes.txt is gone: %v", err)
					}
					if got := dirstate.Listing(t, dir); got != replicaFiles {
						t.Fatalf("a refused destroy changed the replica:\n%s\nwas:\n%s", got, replicaFiles)
					}
				},
				Config: replicaConfig(p.URL, dir, "destroy_data = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

// TestAccReplicaResource_zoneNamesValidated (issue 8.3): zone names and
// patterns without the trailing dot or in upper case are errors at
// validate time, on the attribute, naming the fix; no request is made.
func TestAccReplicaResource_zoneNamesValidated(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if n := p.refsRequests.Load(); n != 0 {
				return fmt.Errorf("invalid configurations reached the primary: %d GET /v0/refs", n)
			}
			if dirExists(dir) {
				return fmt.Errorf("an invalid configuration created %s", dir)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config:      replicaConfig(p.URL, dir, `zones = ["example.org.", "example.com"]`),
				ExpectError: errorLike("Invalid zone filter", `zones = ["example.org.", "example.com"]`, `"example.com"`, `use "example.com."`),
			},
			{
				Config:      replicaConfig(p.URL, dir, `zones = ["Example.COM."]`),
				ExpectError: errorLike("Invalid zone filter", `"Example.COM."`, `use "example.com."`),
			},
			{
				Config:      replicaConfig(p.URL, dir, `zones = ["*.example.com"]`),
				ExpectError: errorLike("Invalid zone filter", `use "*.example.com."`),
			},
			{
				Config:      replicaConfig(p.URL, dir, `branches = ["example.com./main"]`),
				ExpectError: errorLike("Invalid branch filter", "no '/'"),
			},
			{
				Config:      replicaConfig(p.URL, dir, `pins = { "example.com/main" = "`+strings.Repeat("ab", 32)+`" }`),
				ExpectError: errorLike("Invalid pin", `use "example.com./main"`),
			},
			{
				Config: fmt.Sprintf(`
data "zonegit_refs" "test" {
  primary_url = %q
  zone_filter = ["example.com"]
}
`, p.URL),
				ExpectError: errorLike("Invalid zone filter", `use "example.com."`),
			},
		},
	})
}

// TestAccReplicaResource_timeoutsValidated (issue 8.6): a timeout that is
// not positive is an error at validate time, before anything is created.
func TestAccReplicaResource_timeoutsValidated(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkDirGone(dir, "an invalid timeout created"),
		Steps: []resource.TestStep{
			{
				Config:      replicaConfig(p.URL, dir, "timeouts {\n    create = \"-1s\"\n  }"),
				ExpectError: errorLike("Invalid timeout", `timeouts.create = "-1s" is not positive`),
			},
			{
				Config:      replicaConfig(p.URL, dir, "timeouts {\n    update = \"0s\"\n  }"),
				ExpectError: errorLike("Invalid timeout", `timeouts.update = "0s" is not positive`),
			},
			{
				Config:      replicaConfig(p.URL, dir, "timeouts {\n    create = \"soon\"\n  }"),
				ExpectError: errorLike("soon"),
			},
		},
	})
}

// TestAccReplicaResource_noRefreshAfterCreate (issue 8.7): right after a
// create, `plan -refresh=false` works with the primary down, from the
// refs record the create kept.
func TestAccReplicaResource_noRefreshAfterCreate(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	h := p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	config := replicaConfig(p.URL, dir, "")
	var before int64
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					expectRefs(replicaAddr, func() map[string]string { return map[string]string{"example.com./main": h} }),
				},
			},
			// The primary is down for the plan without refresh, and back
			// for the plan with refresh that the step runs after it.
			{
				PreConfig: func() {
					before = p.refsRequests.Load()
					p.failRefs.Store(1 << 30)
				},
				Config:   config,
				PlanOnly: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPreRefresh: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan(),
						funcPlanCheck(func(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
							if n := p.refsRequests.Load() - before; n != 0 {
								resp.Error = fmt.Errorf("plan -refresh=false asked the primary %d times, want 0", n)
							}
							p.failRefs.Store(0)
						}),
					},
				},
			},
		},
	})
}

// TestAccReplicaResource_failedCreateCleansUp (issue 8.9): a create that
// fails removes what it made (the directory and parents it created, or the
// repository files in a directory that existed empty) and nothing else.
func TestAccReplicaResource_failedCreateCleansUp(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	p.failObjects.Store(true)
	base := t.TempDir()
	created := filepath.Join(base, "a")
	deep := filepath.Join(created, "b", "replica")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	// A repository that was there keeps its data (Badger's own files may
	// change when it is opened for writing, its branches may not).
	existing := filepath.Join(base, "existing")
	r, err := repo.Open(existing, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Import(context.Background(), repo.ImportOptions{Zone: "example.org.", Source: strings.NewReader(zoneFile("example.org.", 1))}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	existingBefore := fmt.Sprint(localRefs(t, existing))

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      replicaConfig(p.URL, deep, ""),
				ExpectError: errorLike("Replica pull failed", "500"),
			},
			{
				PreConfig: func() {
					if dirExists(created) {
						t.Fatalf("a failed create left %s (it created it)", created)
					}
				},
				Config:      replicaConfig(p.URL, empty, ""),
				ExpectError: errorLike("Replica pull failed", "500"),
			},
			{
				PreConfig: func() {
					d, err := repo.InspectDir(empty)
					if err != nil || !d.Empty() {
						t.Fatalf("a failed create in an empty directory left %+v (%v), want it empty", d, err)
					}
				},
				Config:      replicaConfig(p.URL, existing, ""),
				ExpectError: errorLike("Replica pull failed", "500"),
			},
			// The primary recovers: the create works.
			{
				PreConfig: func() {
					if d, err := repo.InspectDir(existing); err != nil || !d.IsRepository() {
						t.Fatalf("a failed create removed the repository that was there: %+v %v", d, err)
					}
					if got := fmt.Sprint(localRefs(t, existing)); got != existingBefore {
						t.Fatalf("a failed create changed the branches of the repository that was there: %s, was %s", got, existingBefore)
					}
					p.failObjects.Store(false)
				},
				Config: replicaConfig(p.URL, deep, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("refs"), knownvalue.MapSizeExact(1)),
				},
			},
		},
	})
}

// TestAccReplicaResource_leavingTheSelection (issue 8.10): with prune, the
// replica holds exactly its selection: a branch pinned outside the filters
// goes when it is unpinned, and branches of a zone that leaves the filters
// go; without prune they stay where they were.
func TestAccReplicaResource_leavingTheSelection(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	hashes := map[string]string{}
	relOld := p.commit("example.com.", "rel")
	hashes["example.com./rel"] = p.commit("example.com.", "rel")
	hashes["example.com./main"] = p.commit("example.com.", "main")
	hashes["example.org./main"] = p.commit("example.org.", "main")
	want := func(pairs ...string) func() map[string]string {
		return func() map[string]string {
			out := map[string]string{}
			for i := 0; i < len(pairs); i += 2 {
				out[pairs[i]] = pairs[i+1]
			}
			return out
		}
	}
	dir := filepath.Join(t.TempDir(), "replica")
	pinned := fmt.Sprintf(`pins = { "example.com./rel" = %q }`, relOld)
	step := func(body string, w func() map[string]string) resource.TestStep {
		return resource.TestStep{
			Config: replicaConfig(p.URL, dir, body),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				expectPlannedRefs(replicaAddr, w),
			}},
			ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, w)},
			Check:             checkDisk(t, dir, w),
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			step(`zones = ["example.com.", "example.org."]`+"\n  branches = [\"main\"]\n  "+pinned,
				want("example.com./main", hashes["example.com./main"], "example.org./main", hashes["example.org./main"], "example.com./rel", relOld)),
			// Unpinned without prune: kept where the pin left it.
			step(`zones = ["example.com.", "example.org."]`+"\n  branches = [\"main\"]",
				want("example.com./main", hashes["example.com./main"], "example.org./main", hashes["example.org./main"], "example.com./rel", relOld)),
			// With prune it goes: the replica is its selection.
			step(`zones = ["example.com.", "example.org."]`+"\n  branches = [\"main\"]\n  prune = true",
				want("example.com./main", hashes["example.com./main"], "example.org./main", hashes["example.org./main"])),
			// Pinned again, then unpinned with prune: goes in one apply.
			step(`zones = ["example.com.", "example.org."]`+"\n  branches = [\"main\"]\n  prune = true\n  "+pinned,
				want("example.com./main", hashes["example.com./main"], "example.org./main", hashes["example.org./main"], "example.com./rel", relOld)),
			step(`zones = ["example.com.", "example.org."]`+"\n  branches = [\"main\"]\n  prune = true",
				want("example.com./main", hashes["example.com./main"], "example.org./main", hashes["example.org./main"])),
			// Unpinned while the filters select it: follows the primary.
			step(`zones = ["example.com."]`+"\n  branches = [\"main\", \"rel\"]\n  "+pinned,
				want("example.com./main", hashes["example.com./main"], "example.org./main", hashes["example.org./main"], "example.com./rel", relOld)),
			step(`zones = ["example.com."]`+"\n  branches = [\"main\", \"rel\"]",
				want("example.com./main", hashes["example.com./main"], "example.org./main", hashes["example.org./main"], "example.com./rel", hashes["example.com./rel"])),
			// A zone that left the filters goes with prune.
			step(`zones = ["example.com."]`+"\n  branches = [\"main\", \"rel\"]\n  prune = true",
				want("example.com./main", hashes["example.com./main"], "example.com./rel", hashes["example.com./rel"])),
		},
	})
}

// TestAccReplicaResource_importDescribesReplica (issue 8.10): import
// records the replica's zones and branches, so importing into the
// configuration that made it plans nothing, and -generate-config-out
// writes filters that keep the replica as it is (not zones = null).
func TestAccReplicaResource_importDescribesReplica(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	p.commit("example.com.", "rel[1]")
	p.commit("example.com.", "rel1") // matched by "rel[1]" as a glob: import must not widen to it
	p.commit("example.com.", "dev")
	p.commit("example.org.", "main")
	p.commit("example.net.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	body := "zones    = [\"example.com.\", \"example.org.\"]\n  branches = [\"main\", \"rel\\\\[1\\\\]\"]"
	config := replicaConfig(p.URL, dir, body)
	providerOnly := fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
}
`, p.URL)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("refs"), knownvalue.MapSizeExact(3)),
				},
			},
			// An import block into the same configuration: a no-op plan.
			{
				Config:          config,
				ResourceName:    replicaAddr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   dir,
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("zones"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("example.com."), knownvalue.StringExact("example.org.")})),
					plancheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("branches"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("main"), knownvalue.StringExact(`rel\[1\]`)})),
				}},
			},
			// Generated configuration: also a no-op, with the filters set.
			{
				Config:          providerOnly,
				ResourceName:    replicaAddr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   dir,
				GenerateConfig:  true,
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("zonegit_replica.generated", tfjsonpath.New("zones"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("example.com."), knownvalue.StringExact("example.org.")})),
					plancheck.ExpectKnownValue("zonegit_replica.generated", tfjsonpath.New("refs"), knownvalue.MapSizeExact(3)),
				}},
			},
		},
	})
}

// TestAccReplicaResource_pinsCheckedAtPlan (issue 8.11): a pin to a commit
// the primary does not have, or to an object that is not a commit, fails
// the plan on that pin, after exactly one request for it; pins already
// applied, and configurations without pins, ask nothing.
func TestAccReplicaResource_pinsCheckedAtPlan(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	h1 := p.commit("example.com.", "main")
	p.commit("example.com.", "main")
	_, payload, err := p.repo.Get(repo.MustParseHash(h1))
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.DecodeCommit(payload)
	if err != nil {
		t.Fatal(err)
	}
	missing := strings.Repeat("ab", 32)
	dir := filepath.Join(t.TempDir(), "replica")
	pin := func(h string) string { return fmt.Sprintf(`pins = { "example.com./main" = %q }`, h) }
	objectRequests := func(hash string) int {
		return p.requestCounts()[requestKey{"", replicate.BasePath + "/objects/" + hash}]
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig:   p.resetRequests,
				Config:      replicaConfig(p.URL, dir, pin(missing)),
				ExpectError: errorLike("Pinned commit not on the primary", `Pin "example.com./main"`, missing, p.URL),
			},
			{
				PreConfig: func() {
					if n := objectRequests(missing); n != 1 {
						t.Fatalf("the plan asked for the missing pin %d times, want 1", n)
					}
					if dirExists(dir) {
						t.Fatalf("a refused plan created %s", dir)
					}
					p.resetRequests()
				},
				Config:      replicaConfig(p.URL, dir, pin(c.Tree.String())),
				ExpectError: errorLike("Cannot check pinned commit", "is a tree, not a commit"),
			},
			// A good pin applies; the plans after it ask nothing about it.
			{
				Config:            replicaConfig(p.URL, dir, pin(h1)),
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, func() map[string]string { return map[string]string{"example.com./main": h1} })},
			},
			{
				PreConfig: p.resetRequests,
				Config:    replicaConfig(p.URL, dir, pin(h1)),
				PlanOnly:  true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					funcPlanCheck(func(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
						var paths []string
						for k := range p.requestCounts() {
							if isObjectPath(k.Path) {
								paths = append(paths, k.Path)
							}
						}
						sort.Strings(paths)
						if len(paths) > 0 {
							resp.Error = fmt.Errorf("plans with an applied pin made object requests: %v", paths)
						}
					}),
				}},
			},
		},
	})
}

// TestAccReplicaResource_replacedByOtherFiles: a replica whose directory
// now holds only other files is gone, like a deleted directory: refresh
// drops it (it does not fail, so destroy still works), the plan to create
// it again is refused naming the files, and they are never touched.
func TestAccReplicaResource_replacedByOtherFiles(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	config := replicaConfig(p.URL, dir, "destroy_data = true")
	notes := filepath.Join(dir, "notes.txt")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkDirGone(dir, "destroy with destroy_data = true left"),
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					if err := repo.RemoveRepository(dir, true); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				// The create plan's refusal: refresh dropped the replica
				// rather than failing.
				ExpectError: errorLike("Path is not a zonegit repository", dir, `"notes.txt"`, "A replica's path must be absent"),
			},
			{
				PreConfig: func() {
					if b, err := os.ReadFile(notes); err != nil || string(b) != "mine" {
						t.Fatalf("notes.txt: %q %v", b, err)
					}
					if err := os.Remove(notes); err != nil {
						t.Fatal(err)
					}
				},
				// The empty directory is a replica with no branches yet.
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("refs"), knownvalue.MapSizeExact(1)),
				},
				Check: func(*terraform.State) error {
					if d, err := repo.InspectDir(dir); err != nil || !d.IsRepository() {
						return fmt.Errorf("replica directory: %+v %v", d, err)
					}
					return nil
				},
			},
		},
	})
}
