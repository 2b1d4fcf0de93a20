package resources_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func refObject(zone, name, hash string) knownvalue.Check {
	return knownvalue.ObjectExact(map[string]knownvalue.Check{
		"zone": knownvalue.StringExact(zone),
		"name": knownvalue.StringExact(name),
		"hash": knownvalue.StringExact(hash),
	})
}

// TestAccRefsDataSource: zones, branches, tips and tags of a primary, with
// and without a zone filter, as attributes and outputs; tags are empty when
// a plain v0 primary does not offer them.
func TestAccRefsDataSource(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	comMain := p.commit("example.com.", "main")
	comDev := p.commit("example.com.", "dev")
	orgMain := p.commit("example.org.", "main")
	p.tag("example.com.", "v1", comMain)
	v0 := newTestPrimary(t, primaryOptions{V0Only: true})
	v0Main := v0.commit("example.net.", "main")
	v0.tag("example.net.", "v1", v0Main)

	config := fmt.Sprintf(`
provider "zonegit" {
  primary_url = %q
}

data "zonegit_refs" "all" {}

data "zonegit_refs" "com" {
  zone_filter = ["*.com."]
}

data "zonegit_refs" "v0" {
  primary_url = %q
}

output "tips" {
  value = data.zonegit_refs.all.tips
}

output "com_zones" {
  value = data.zonegit_refs.com.zones
}
`, p.URL, v0.URL)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.zonegit_refs.all", tfjsonpath.New("zones"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("example.com."), knownvalue.StringExact("example.org."),
					})),
					statecheck.ExpectKnownValue("data.zonegit_refs.all", tfjsonpath.New("branches"), knownvalue.ListExact([]knownvalue.Check{
						refObject("example.com.", "dev", comDev),
						refObject("example.com.", "main", comMain),
						refObject("example.org.", "main", orgMain),
					})),
					statecheck.ExpectKnownValue("data.zonegit_refs.all", tfjsonpath.New("tags"), knownvalue.ListExact([]knownvalue.Check{
						refObject("example.com.", "v1", comMain),
					})),
					statecheck.ExpectKnownOutputValue("tips", knownvalue.MapExact(map[string]knownvalue.Check{
						"example.com./main": knownvalue.StringExact(comMain),
						"example.com./dev":  knownvalue.StringExact(comDev),
						"example.org./main": knownvalue.StringExact(orgMain),
					})),
					statecheck.ExpectKnownOutputValue("com_zones", knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("example.com."),
					})),
					statecheck.ExpectKnownValue("data.zonegit_refs.com", tfjsonpath.New("tips"), knownvalue.MapExact(map[string]knownvalue.Check{
						"example.com./main": knownvalue.StringExact(comMain),
						"example.com./dev":  knownvalue.StringExact(comDev),
					})),
					statecheck.ExpectKnownValue("data.zonegit_refs.v0", tfjsonpath.New("tips"), knownvalue.MapExact(map[string]knownvalue.Check{
						"example.net./main": knownvalue.StringExact(v0Main),
					})),
					statecheck.ExpectKnownValue("data.zonegit_refs.v0", tfjsonpath.New("tags"), knownvalue.ListSizeExact(0)),
				},
			},
		},
	})
}

// TestAccRefsDataSource_errors: an unreachable primary, a primary answering
// something that is not JSON, and a refused token name the URL and what
// happened.
func TestAccRefsDataSource_errors(t *testing.T) {
	garbage := newTestPrimary(t, primaryOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"zones": [`)
	})})
	authed := newTestPrimary(t, primaryOptions{Token: "right"})
	authed.commit("example.com.", "main")
	dead := deadURL(t)
	config := func(url, token string) string {
		return fmt.Sprintf(`
provider "zonegit" {
  token = %q
  retry {
    attempts = 0
  }
}

data "zonegit_refs" "test" {
  primary_url = %q
}
`, token, url)
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(dead, ""), ExpectError: errorLike("Cannot read the primary's refs", dead)},
			{Config: config(garbage.URL, ""), ExpectError: errorLike("Cannot read the primary's refs", garbage.URL)},
			{Config: config(authed.URL, "wrong"), ExpectError: errorLike(authed.URL, "401")},
			{
				Config: config(authed.URL, "right"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.zonegit_refs.test", tfjsonpath.New("zones"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("example.com."),
					})),
				},
			},
		},
	})
}
