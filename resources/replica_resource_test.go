package resources_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/zonegit/terraform-provider-zonegit/internal/testpki"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

const replicaAddr = "zonegit_replica.test"

// refsAre checks a refs map exactly; values are read when the check runs,
// so hashes committed during the test (PreConfig) can be used.
func refsAre(want func() map[string]string) knownvalue.Check {
	return knownvalue.MapExact(lazyMap(want))
}

// lazyMap builds MapExact checks whose keys are known up front and whose
// values are looked up when checked.
func lazyMap(want func() map[string]string) map[string]knownvalue.Check {
	out := map[string]knownvalue.Check{}
	for k := range want() {
		out[k] = knownvalue.StringFunc(func(got string) error {
			if w := want()[k]; got != w {
				return fmt.Errorf("%s = %s, want %s", k, got, w)
			}
			return nil
		})
	}
	return out
}

func expectRefs(addr string, want func() map[string]string) statecheck.StateCheck {
	return statecheck.ExpectKnownValue(addr, tfjsonpath.New("refs"), refsAre(want))
}

func expectPlannedRefs(addr string, want func() map[string]string) plancheck.PlanCheck {
	return plancheck.ExpectKnownValue(addr, tfjsonpath.New("refs"), refsAre(want))
}

// checkDisk compares the replica's branches on disk with want.
func checkDisk(t *testing.T, dir string, want func() map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, w := localRefs(t, dir), want()
		if fmt.Sprint(got) != fmt.Sprint(w) {
			return fmt.Errorf("replica on disk has %v, want %v", got, w)
		}
		return nil
	}
}

// TestAccReplicaResource_lifecycle: create, empty second plan, pins back and
// forward, following the primary, a primary that moves between plan and
// apply, import, drift, and destroy keeping the data.
func TestAccReplicaResource_lifecycle(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	const zone = "example.com."
	const key = zone + "/main"
	h1 := p.commit(zone, "main")
	h2 := p.commit(zone, "main")
	h3 := p.commit(zone, "main")
	var h4, h5, h6 string
	dir := filepath.Join(t.TempDir(), "replica")

	config := func(extra string) string {
		return fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
}

resource "zonegit_replica" "test" {
  path = %q
  %s
}
`, p.URL, dir, extra)
	}
	pinned := func(h string) string { return fmt.Sprintf("pins = { %q = %q }", key, h) }
	at := func(h *string) func() map[string]string {
		return func() map[string]string { return map[string]string{key: *h} }
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if !dirExists(dir) {
				return fmt.Errorf("destroy with destroy_data = false removed %s", dir)
			}
			// The last apply left the replica at h6.
			if got := localRefs(t, dir); len(got) != 1 || got[key] != h6 {
				return fmt.Errorf("destroy with destroy_data = false changed the data: %v, want %s = %s", got, key, h6)
			}
			return nil
		},
		Steps: []resource.TestStep{
			// Create: the plan already shows the primary's tip.
			{
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(replicaAddr, plancheck.ResourceActionCreate),
					expectPlannedRefs(replicaAddr, at(&h3)),
					plancheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("id"), knownvalue.StringExact(dir)),
					plancheck.ExpectUnknownValue(replicaAddr, tfjsonpath.New("last_pull")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("id"), knownvalue.StringExact(dir)),
					expectRefs(replicaAddr, at(&h3)),
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("last_pull"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"objects":     knownvalue.Int64Func(positive),
						"bytes":       knownvalue.Int64Func(positive),
						"duration_ms": knownvalue.NotNull(),
						"primary":     knownvalue.StringExact(p.URL),
					})),
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("prune"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("destroy_data"), knownvalue.Bool(false)),
				},
				Check: checkDisk(t, dir, at(&h3)),
			},
			// Nothing changed on the primary: the plan is empty.
			{
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			// Pin back to the first commit.
			{
				Config: config(pinned(h1)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(replicaAddr, plancheck.ResourceActionUpdate),
					expectPlannedRefs(replicaAddr, at(&h1)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, at(&h1))},
				Check:             checkDisk(t, dir, at(&h1)),
			},
			// Pin forward to a commit that is not the primary's tip.
			{
				Config: config(pinned(h2)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectPlannedRefs(replicaAddr, at(&h2)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, at(&h2))},
				Check:             checkDisk(t, dir, at(&h2)),
			},
			// Unpinned again: follows the primary's tip.
			{
				Config:            config(""),
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, at(&h3))},
			},
			// The primary moves: the plan shows the new hash, the apply gets it.
			{
				PreConfig: func() { h4 = p.commit(zone, "main") },
				Config:    config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(replicaAddr, plancheck.ResourceActionUpdate),
					expectPlannedRefs(replicaAddr, at(&h4)),
					plancheck.ExpectUnknownValue(replicaAddr, tfjsonpath.New("last_pull")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, at(&h4))},
				Check:             checkDisk(t, dir, at(&h4)),
			},
			// The primary moves again after the plan: the apply still
			// produces exactly the plan, and the next plan is not empty.
			{
				PreConfig: func() { h5 = p.commit(zone, "main") },
				Config:    config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectPlannedRefs(replicaAddr, at(&h5)),
					funcPlanCheck(func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
						h6 = p.commit(zone, "main")
					}),
				}},
				ConfigStateChecks:  []statecheck.StateCheck{expectRefs(replicaAddr, at(&h5))},
				Check:              checkDisk(t, dir, at(&h5)),
				ExpectNonEmptyPlan: true,
			},
			// Import by path: Read fills the refs from disk. Import also
			// records the replica's zones and branches as filters (it
			// cannot know this configuration selects everything), so
			// those differ from the state made by the configuration.
			{
				Config:                  config(""),
				ResourceName:            replicaAddr,
				ImportState:             true,
				ImportStateId:           dir,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"last_pull", "zones", "branches"},
			},
			// Drift: the directory is gone, so the replica is planned for
			// creation and comes back at the primary's tip.
			{
				PreConfig: func() {
					if err := os.RemoveAll(dir); err != nil {
						t.Fatal(err)
					}
				},
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(replicaAddr, plancheck.ResourceActionCreate),
					expectPlannedRefs(replicaAddr, at(&h6)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, at(&h6))},
				Check:             checkDisk(t, dir, at(&h6)),
			},
		},
	})
}

// TestAccReplicaResource_filtersAndPrune: zone and branch filters (exact and
// glob), a branch deleted on the primary kept without prune and removed with
// it, and destroy_data removing the directory.
func TestAccReplicaResource_filtersAndPrune(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	hashes := map[string]string{
		"example.com./main":      p.commit("example.com.", "main"),
		"example.com./dev":       p.commit("example.com.", "dev"),
		"example.org./main":      p.commit("example.org.", "main"),
		"test.example.net./main": p.commit("test.example.net.", "main"),
	}
	only := func(keys ...string) func() map[string]string {
		return func() map[string]string {
			out := map[string]string{}
			for _, k := range keys {
				out[k] = hashes[k]
			}
			return out
		}
	}
	dir := filepath.Join(t.TempDir(), "replica")
	config := func(body string) string {
		return fmt.Sprintf(`
resource "zonegit_replica" "test" {
  path        = %q
  primary_url = %q
  %s
}
`, dir, p.URL, body)
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkDirGone(dir, "destroy with destroy_data = true left"),
		Steps: []resource.TestStep{
			{
				Config: config(`
  zones    = ["example.com."]
  branches = ["main"]`),
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, only("example.com./main"))},
			},
			// Widening the filter (globs, all branches) adds branches.
			{
				Config: config(`zones = ["example.*"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectPlannedRefs(replicaAddr, only("example.com./main", "example.com./dev", "example.org./main")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					expectRefs(replicaAddr, only("example.com./main", "example.com./dev", "example.org./main")),
				},
			},
			// A branch deleted on the primary stays without prune.
			{
				PreConfig: func() { p.deleteBranch("example.com.", "dev") },
				Config:    config(`zones = ["example.*"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			// With prune it goes.
			{
				Config: config(`
  zones = ["example.*"]
  prune = true`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(replicaAddr, plancheck.ResourceActionUpdate),
					expectPlannedRefs(replicaAddr, only("example.com./main", "example.org./main")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					expectRefs(replicaAddr, only("example.com./main", "example.org./main")),
				},
				Check: checkDisk(t, dir, only("example.com./main", "example.org./main")),
			},
			// destroy_data changes nothing on disk until destroy.
			{
				Config: config(`
  zones        = ["example.*"]
  prune        = true
  destroy_data = true`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(replicaAddr, plancheck.ResourceActionUpdate),
					expectPlannedRefs(replicaAddr, only("example.com./main", "example.org./main")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					expectRefs(replicaAddr, only("example.com./main", "example.org./main")),
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("destroy_data"), knownvalue.Bool(true)),
				},
				Check: checkDisk(t, dir, only("example.com./main", "example.org./main")),
			},
		},
	})
}

// TestAccReplicaResource_token: a primary requiring a bearer token refuses a
// wrong one and accepts the right one, from the configuration or from the
// environment.
func TestAccReplicaResource_token(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{Token: "s3cret-token"})
	h := p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	config := func(providerBody string) string {
		return fmt.Sprintf(`
provider "zonegit" {
  %s
}

resource "zonegit_replica" "test" {
  path = %q
}
`, providerBody, dir)
	}
	want := func() map[string]string { return map[string]string{"example.com./main": h} }

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config(fmt.Sprintf("primary_url = %q\n  token = \"wrong\"", p.URL)),
				ExpectError: errorLike(p.URL, "401"),
			},
			{
				Config:            config(fmt.Sprintf("primary_url = %q\n  token = \"s3cret-token\"", p.URL)),
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(replicaAddr, want)},
			},
			// ZONEGIT_PRIMARY_URL and ZONEGIT_TOKEN configure the provider
			// when the attributes are absent.
			{
				PreConfig: func() {
					t.Setenv("ZONEGIT_PRIMARY_URL", p.URL)
					t.Setenv("ZONEGIT_TOKEN", "s3cret-token")
				},
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

// TestAccReplicaResource_TLS: an https primary with a private CA fails
// without ca_cert_pem and works with it; an mTLS primary refuses a client
// without a certificate and accepts one signed by its client CA.
func TestAccReplicaResource_TLS(t *testing.T) {
	tlsPrimary := newTestPrimary(t, primaryOptions{TLS: true})
	hTLS := tlsPrimary.commit("example.com.", "main")
	ca := testpki.New(t)
	mtlsPrimary := newTestPrimary(t, primaryOptions{TLS: true, ClientCAs: ca.Pool})
	hMTLS := mtlsPrimary.commit("example.org.", "main")
	cert, key := ca.ClientCert(t, "replica")
	certPEM, keyPEM := string(cert), string(key)
	// Both servers present httptest's certificate.
	serverCA := tlsPrimary.serverCAPEM()

	base := t.TempDir()
	config := func(providerBody string, withMTLS bool) string {
		c := fmt.Sprintf(`
provider "zonegit" {
  %s
}

resource "zonegit_replica" "tls" {
  path        = %q
  primary_url = %q
}
`, providerBody, filepath.Join(base, "tls"), tlsPrimary.URL)
		if withMTLS {
			c += fmt.Sprintf(`
resource "zonegit_replica" "mtls" {
  path        = %q
  primary_url = %q
}
`, filepath.Join(base, "mtls"), mtlsPrimary.URL)
		}
		return c
	}
	retry := "retry {\n    attempts = 0\n  }\n"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config(retry, false),
				ExpectError: errorLike(tlsPrimary.URL, "certificate"),
			},
			{
				Config: config(retry+"  ca_cert_pem = "+hcl(serverCA), false),
				ConfigStateChecks: []statecheck.StateCheck{
					expectRefs("zonegit_replica.tls", func() map[string]string { return map[string]string{"example.com./main": hTLS} }),
				},
			},
			{
				Config:      config(retry+"  ca_cert_pem = "+hcl(serverCA), true),
				ExpectError: errorLike(mtlsPrimary.URL, "certificate"),
			},
			{
				Config: config(retry+"  ca_cert_pem = "+hcl(serverCA)+"\n  client_cert_pem = "+hcl(certPEM)+
					"\n  client_key_pem = "+hcl(keyPEM), true),
				ConfigStateChecks: []statecheck.StateCheck{
					expectRefs("zonegit_replica.tls", func() map[string]string { return map[string]string{"example.com./main": hTLS} }),
					expectRefs("zonegit_replica.mtls", func() map[string]string { return map[string]string{"example.org./main": hMTLS} }),
				},
			},
		},
	})
}

// TestAccReplicaResource_retries: a primary answering 503 twice is retried
// (and counted); with retries disabled the same failure is an error.
func TestAccReplicaResource_retries(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	h := p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	config := func(attempts int) string {
		return fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
  retry {
    attempts     = %d
    min_delay_ms = 10
    max_delay_ms = 50
  }
}

resource "zonegit_replica" "test" {
  path = %q
}
`, p.URL, attempts, dir)
	}
	var before int64

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					p.failRefs.Store(2)
					before = p.refsRequests.Load()
				},
				Config: config(3),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// A new replica has no refresh: the plan's own GET
					// failed twice and succeeded on the third try. (The
					// apply then asks again, without failures, which
					// counts the pull's own requests too: not checked
					// here.)
					funcPlanCheck(func(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
						if n, f := p.refsRequests.Load()-before, p.failed.Load(); n != 3 || f != 2 {
							resp.Error = fmt.Errorf("plan: primary saw %d refs requests with %d 503s, want 3 with 2", n, f)
						}
					}),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					expectRefs(replicaAddr, func() map[string]string { return map[string]string{"example.com./main": h} }),
				},
			},
			{
				// attempts = 0: the first 503 is final, both for the
				// refresh's refs record and for the plan's own request.
				PreConfig:   func() { p.failRefs.Store(2) },
				Config:      config(0),
				ExpectError: errorLike(p.URL, "503"),
			},
		},
	})
}

// TestAccReplicaResource_errors: an unreachable primary, a missing primary
// URL, a pin to a commit the primary does not have (caught by the plan),
// and a replica held by another writer are errors that say what happened.
func TestAccReplicaResource_errors(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	deadURL := deadURL(t)
	base := t.TempDir()
	locked := filepath.Join(base, "locked")

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
provider "zonegit" {
  retry {
    attempts = 0
  }
}

resource "zonegit_replica" "test" {
  path        = %q
  primary_url = %q
}
`, filepath.Join(base, "dead"), deadURL),
				ExpectError: errorLike("Cannot read the primary's refs", deadURL),
			},
			{
				Config: fmt.Sprintf(`
resource "zonegit_replica" "test" {
  path = %q
}
`, filepath.Join(base, "nourl")),
				ExpectError: errorLike("Missing primary URL"),
			},
			{
				Config: fmt.Sprintf(`
resource "zonegit_replica" "test" {
  path        = %q
  primary_url = %q
  pins        = { "example.com./main" = "%064x" }
}
`, filepath.Join(base, "badpin"), p.URL, 1),
				ExpectError: errorLike("Pinned commit not on the primary", `Pin "example.com./main"`, p.URL, "does not have that commit"),
			},
			// Another writer takes the replica between plan and apply.
			{
				Config: fmt.Sprintf(`
resource "zonegit_replica" "test" {
  path        = %q
  primary_url = %q
}
`, locked, p.URL),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					funcPlanCheck(func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
						r, err := repo.Open(locked, repo.Options{})
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { r.Close() })
					}),
				}},
				ExpectError: errorLike("replica " + locked + " is in use by another process"),
			},
		},
	})
}

func positive(v int64) error {
	if v <= 0 {
		return fmt.Errorf("got %d, want > 0", v)
	}
	return nil
}
