package resources_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/zonegit/terraform-provider-zonegit/internal/testpki"
	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

// secondaryToken is the control token of the test daemons unless a test
// gives one its own.
const secondaryToken = "control-token-of-the-test-fleet"

// testSecondary is a secondary daemon for one test: secondary.New on a
// directory of its own, its Handler served on loopback. Stopping and
// starting it again keeps the daemon and the address, so a daemon can be
// "down" for a step and come back.
type testSecondary struct {
	t      *testing.T
	name   string
	dir    string
	daemon *secondary.Daemon
	server *httptest.Server
	tls    *tls.Config // nil: plain http
	addr   string
	URL    string
	token  string
	// clientCert and clientKey (PEM) are what the test's own control
	// client presents to a daemon that requires a client certificate.
	clientCert, clientKey string
}

// secondaryOptions configure newTestSecondary.
type secondaryOptions struct {
	Token  string        // default secondaryToken
	Follow time.Duration // the daemon's --follow
	TLS    *tls.Config   // serve https with this configuration
}

func newTestSecondary(t *testing.T, name, primaryURL string, opts secondaryOptions) *testSecondary {
	t.Helper()
	if opts.Token == "" {
		opts.Token = secondaryToken
	}
	s := &testSecondary{t: t, name: name, dir: filepath.Join(t.TempDir(), name), tls: opts.TLS, token: opts.Token}
	d, err := secondary.New(secondary.Config{
		Dir:          s.dir,
		Primary:      replicate.ClientOptions{PrimaryURL: primaryURL},
		Follow:       opts.Follow,
		ControlToken: opts.Token,
		Logf:         func(format string, args ...any) { t.Logf(name+": "+format, args...) },
	})
	if err != nil {
		t.Fatalf("secondary %s: %v", name, err)
	}
	s.daemon = d
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close secondary %s: %v", name, err)
		}
	})
	s.start()
	t.Cleanup(s.stop) // runs before the daemon's Close
	return s
}

// start serves the daemon, on the address it had before if it had one.
func (s *testSecondary) start() {
	s.t.Helper()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatalf("secondary %s: listen on %s: %v", s.name, addr, err)
	}
	s.server = httptest.NewUnstartedServer(s.daemon.Handler())
	s.server.Listener.Close()
	s.server.Listener = l
	scheme := "http"
	if s.tls != nil {
		s.server.TLS = s.tls
		s.server.StartTLS()
		scheme = "https"
	} else {
		s.server.Start()
	}
	s.addr = l.Addr().String()
	s.URL = scheme + "://" + s.addr
}

// stop makes the daemon unreachable (its data and state stay).
func (s *testSecondary) stop() {
	if s.server != nil {
		s.server.Close()
		s.server = nil
	}
}

// control is a control client of the daemon, as another operator's.
func (s *testSecondary) control() *secondary.ControlClient {
	s.t.Helper()
	opts := secondary.ControlOptions{Token: s.token, RetryAttempts: -1, ClientCertPEM: s.clientCert, ClientKeyPEM: s.clientKey}
	if s.tls != nil {
		opts.Insecure = true
	}
	c, err := secondary.NewControlClient(s.URL, opts)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// status is the daemon's GET /status.
func (s *testSecondary) status() *secondary.Status {
	s.t.Helper()
	st, err := s.control().Status(context.Background())
	if err != nil {
		s.t.Fatalf("status of secondary %s: %v", s.name, err)
	}
	return st
}

// fleetConfig is a provider (with the control token) and one
// zonegit_secondary per daemon via for_each; pins[name], when present, is
// that daemon's pins block value; extra goes into every instance.
func fleetConfig(provider string, secs []*testSecondary, pins map[string]map[string]string, extra string) string {
	var fleet, pinned strings.Builder
	for _, s := range secs {
		fmt.Fprintf(&fleet, "    %s = %q\n", s.name, s.URL)
	}
	for _, name := range sortedNames(pins) {
		fmt.Fprintf(&pinned, "    %s = {\n", name)
		for k, v := range pins[name] {
			fmt.Fprintf(&pinned, "      %q = %q\n", k, v)
		}
		pinned.WriteString("    }\n")
	}
	if provider == "" {
		provider = fmt.Sprintf("secondary_token = %q", secondaryToken)
	}
	return fmt.Sprintf(`
provider "zonegit" {
  %s
}

locals {
  fleet = {
%s  }
  pins = {
%s  }
}

resource "zonegit_secondary" "fleet" {
  for_each = local.fleet
  url      = each.value
  pins     = try(local.pins[each.key], null)
  %s
}
`, provider, fleet.String(), pinned.String(), extra)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// planFleet expects every instance of the fleet planned for action, with
// the refs want(name).
func planFleet(secs []*testSecondary, action plancheck.ResourceActionType, want func(name string) map[string]string) []plancheck.PlanCheck {
	var out []plancheck.PlanCheck
	for _, s := range secs {
		out = append(out,
			plancheck.ExpectResourceAction(fleetAddr(s.name), action),
			expectPlannedRefs(fleetAddr(s.name), func() map[string]string { return want(s.name) }))
	}
	return out
}

// fleetAddr is the address of one instance of the fleet.
func fleetAddr(name string) string { return fmt.Sprintf("zonegit_secondary.fleet[%q]", name) }

// funcStateCheck runs fn as a state check. The fleet tests check with
// state checks only: terraform-plugin-testing's legacy Check, CheckDestroy
// and import steps read the state through a shim that refuses for_each
// instances, so they are used only where there is no for_each.
type funcStateCheck func() error

func (f funcStateCheck) CheckState(_ context.Context, _ statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	resp.Error = f()
}

// daemonHolds compares what a daemon holds with want (read when the check
// runs) and requires a desired state.
func daemonHolds(s *testSecondary, want func() map[string]string) funcStateCheck {
	return func() error {
		st := s.status()
		if st.Desired == nil {
			return fmt.Errorf("secondary %s has no desired state after the apply", s.name)
		}
		if w := want(); !maps.Equal(st.Refs, w) {
			return fmt.Errorf("secondary %s holds %v, want %v", s.name, st.Refs, w)
		}
		return nil
	}
}

// fleetHolds checks every daemon against want(name).
func fleetHolds(secs []*testSecondary, want func(name string) map[string]string) []statecheck.StateCheck {
	var out []statecheck.StateCheck
	for _, s := range secs {
		out = append(out, daemonHolds(s, func() map[string]string { return want(s.name) }))
	}
	return out
}

// fleetCleared is the check of a destroy: every daemon's desired state is
// cleared and its data kept.
func fleetCleared(secs []*testSecondary) funcStateCheck {
	return func() error {
		for _, s := range secs {
			st := s.status()
			if st.Desired != nil {
				return fmt.Errorf("destroy left secondary %s with desired state %+v", s.name, *st.Desired)
			}
			if len(st.Refs) == 0 {
				return fmt.Errorf("destroy removed the data of secondary %s", s.name)
			}
		}
		return nil
	}
}

// destroyFleet is the last step of a fleet test: a configuration without
// the fleet destroys every instance (the post-test destroy cannot, see
// funcStateCheck), which clears each daemon's desired state and keeps its data.
func destroyFleet(secs []*testSecondary) resource.TestStep {
	var checks []plancheck.PlanCheck
	for _, s := range secs {
		checks = append(checks, plancheck.ExpectResourceAction(fleetAddr(s.name), plancheck.ResourceActionDestroy))
	}
	return resource.TestStep{
		Config:            fmt.Sprintf("provider \"zonegit\" {\n  secondary_token = %q\n}\n", secondaryToken),
		ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: checks},
		ConfigStateChecks: []statecheck.StateCheck{fleetCleared(secs)},
	}
}

// TestAccSecondaryResource_fleet: one primary, three daemons, for_each over
// them. The apply moves all three to the planned hashes; a commit on the
// primary shows three moves in the plan; a pin holds one back while the
// others follow; a primary that moves between plan and apply changes
// nothing; drift (refs moved, desired state changed, desired state cleared
// behind Terraform's back) shows in the next plan; destroy clears the
// desired state and keeps the data. (Import is in _tokens: the testing
// framework cannot import into a for_each.)
func TestAccSecondaryResource_fleet(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	const zone = "example.com."
	const key = zone + "/main"
	h1 := p.commit(zone, "main")
	var h2, h3, h4, h5 string
	secs := []*testSecondary{
		newTestSecondary(t, "a", p.URL, secondaryOptions{}),
		newTestSecondary(t, "b", p.URL, secondaryOptions{}),
		newTestSecondary(t, "c", p.URL, secondaryOptions{}),
	}
	a, b, c := secs[0], secs[1], secs[2]
	config := func(pins map[string]map[string]string) string { return fleetConfig("", secs, pins, "") }
	at := func(h *string) func() map[string]string {
		return func() map[string]string { return map[string]string{key: *h} }
	}
	all := func(h *string) func(string) map[string]string {
		return func(string) map[string]string { return at(h)() }
	}
	holdA := func(h *string) map[string]map[string]string {
		return map[string]map[string]string{"a": {key: *h}}
	}
	// a is pinned back at h1 from step 4 on (configurations are built
	// before the steps run, so the pin is a commit that exists already);
	// b and c follow the tip.
	aAtH1 := func(tip *string) func(string) map[string]string {
		return func(name string) map[string]string {
			if name == "a" {
				return at(&h1)()
			}
			return at(tip)()
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			// Create: every plan already shows the primary's tip, and the
			// apply moves every daemon there.
			{
				Config:           config(nil),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: planFleet(secs, plancheck.ResourceActionCreate, all(&h1))},
				ConfigStateChecks: append(fleetHolds(secs, all(&h1)),
					expectRefs(fleetAddr("a"), at(&h1)),
					statecheck.ExpectKnownValue(fleetAddr("b"), tfjsonpath.New("id"), knownvalue.StringExact(b.URL)),
					statecheck.ExpectKnownValue(fleetAddr("c"), tfjsonpath.New("last_pull"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"objects":     knownvalue.Int64Func(positive),
						"bytes":       knownvalue.Int64Func(positive),
						"duration_ms": knownvalue.NotNull(),
						"primary":     knownvalue.StringExact(p.URL),
					})),
					statecheck.ExpectKnownValue(fleetAddr("a"), tfjsonpath.New("follow"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(fleetAddr("a"), tfjsonpath.New("prune"), knownvalue.Bool(false)),
				),
			},
			// Nothing changed: the plan is empty.
			{
				Config:           config(nil),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// A commit on the primary: three moves in the plan.
			{
				PreConfig:         func() { h2 = p.commit(zone, "main") },
				Config:            config(nil),
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: planFleet(secs, plancheck.ResourceActionUpdate, all(&h2))},
				ConfigStateChecks: fleetHolds(secs, all(&h2)),
			},
			// A pin holds a back while b and c follow the next commit.
			{
				PreConfig: func() { h3 = p.commit(zone, "main") },
				Config:    config(holdA(&h1)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectPlannedRefs(fleetAddr("a"), at(&h1)),
					expectPlannedRefs(fleetAddr("b"), at(&h3)),
					expectPlannedRefs(fleetAddr("c"), at(&h3)),
				}},
				ConfigStateChecks: fleetHolds(secs, aAtH1(&h3)),
			},
			// The primary moves after the plan: the apply still produces
			// exactly the plan, and the next plan shows the newer commit.
			{
				PreConfig: func() { h4 = p.commit(zone, "main") },
				Config:    config(holdA(&h1)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fleetAddr("a"), plancheck.ResourceActionNoop),
					expectPlannedRefs(fleetAddr("b"), at(&h4)),
					funcPlanCheck(func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
						h5 = p.commit(zone, "main")
					}),
				}},
				ConfigStateChecks:  fleetHolds(secs, aAtH1(&h4)),
				ExpectNonEmptyPlan: true,
			},
			{
				Config:            config(holdA(&h1)),
				ConfigStateChecks: fleetHolds(secs, aAtH1(&h5)),
			},
			// Drift: b's refs moved back behind Terraform's back (same
			// desired state): the plan moves it to the tip again.
			{
				PreConfig: func() {
					ctl := b.control()
					if _, err := ctl.Apply(context.Background(), secondary.ApplyRequest{
						Desired: *b.status().Desired, Expect: map[string]string{key: h1},
					}); err != nil {
						t.Fatalf("move b behind Terraform's back: %v", err)
					}
				},
				Config: config(holdA(&h1)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fleetAddr("b"), plancheck.ResourceActionUpdate),
					expectPlannedRefs(fleetAddr("b"), at(&h5)),
					plancheck.ExpectResourceAction(fleetAddr("c"), plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: fleetHolds(secs, aAtH1(&h5)),
			},
			// Drift of the desired state: c told to follow another zone
			// only, and a's pin removed. The plan puts both back.
			{
				PreConfig: func() {
					if _, err := c.control().Apply(context.Background(), secondary.ApplyRequest{
						Desired: secondary.Desired{Zones: []string{"other.example."}, Prune: false},
						Expect:  c.status().Refs,
					}); err != nil {
						t.Fatalf("change c's desired state: %v", err)
					}
					if _, err := a.control().Apply(context.Background(), secondary.ApplyRequest{
						Desired: secondary.Desired{}, Expect: a.status().Refs,
					}); err != nil {
						t.Fatalf("change a's desired state: %v", err)
					}
				},
				Config: config(holdA(&h1)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fleetAddr("a"), plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(fleetAddr("a"), tfjsonpath.New("pins"), knownvalue.MapExact(map[string]knownvalue.Check{
						key: knownvalue.StringFunc(func(got string) error {
							if got != h1 {
								return fmt.Errorf("pin %s, want %s", got, h1)
							}
							return nil
						}),
					})),
					plancheck.ExpectResourceAction(fleetAddr("c"), plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(fleetAddr("c"), tfjsonpath.New("zones"), knownvalue.Null()),
					plancheck.ExpectResourceAction(fleetAddr("b"), plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: append(fleetHolds(secs, aAtH1(&h5)),
					funcStateCheck(func() error {
						if d := c.status().Desired; d == nil || len(d.Zones) != 0 {
							return fmt.Errorf("c's desired state was not put back: %+v", d)
						}
						if d := a.status().Desired; d == nil || d.Pins[key] != h1 {
							return fmt.Errorf("a's pin was not put back: %+v", d)
						}
						return nil
					}),
				),
			},
			// Desired state cleared behind Terraform's back: the secondary
			// is gone for Terraform and is created again, on its data.
			{
				PreConfig: func() {
					if err := b.control().Clear(context.Background()); err != nil {
						t.Fatalf("clear b: %v", err)
					}
				},
				Config: config(holdA(&h1)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fleetAddr("b"), plancheck.ResourceActionCreate),
					expectPlannedRefs(fleetAddr("b"), at(&h5)),
					plancheck.ExpectResourceAction(fleetAddr("a"), plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: fleetHolds(secs, aAtH1(&h5)),
			},
			destroyFleet(secs),
		},
	})
}

// TestAccSecondaryResource_daemonDown: a daemon that cannot be reached is an
// error naming its URL on its own instance. Down during the apply, the
// other two are applied; down during plan, the plan fails naming it. A
// branch the daemons cannot pull is an error naming zone, branch and
// daemon. Once all is well again, the next apply converges.
func TestAccSecondaryResource_daemonDown(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	const zone = "example.com."
	const key = zone + "/main"
	h1 := p.commit(zone, "main")
	var h2, h3 string
	secs := []*testSecondary{
		newTestSecondary(t, "a", p.URL, secondaryOptions{}),
		newTestSecondary(t, "b", p.URL, secondaryOptions{}),
		newTestSecondary(t, "c", p.URL, secondaryOptions{}),
	}
	c := secs[2]
	config := fleetConfig("", secs, nil, "")
	at := func(h *string) func() map[string]string {
		return func() map[string]string { return map[string]string{key: *h} }
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            config,
				ConfigStateChecks: fleetHolds(secs, func(string) map[string]string { return at(&h1)() }),
			},
			// c goes down between plan and apply: its apply fails naming
			// it, and a and b are applied.
			{
				PreConfig: func() { h2 = p.commit(zone, "main") },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectPlannedRefs(fleetAddr("c"), at(&h2)),
					funcPlanCheck(func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) { c.stop() }),
				}},
				ExpectError: errorLike("Cannot reach secondary daemon", c.URL),
			},
			// Down at plan: an error naming c; a and b were applied.
			{
				PreConfig: func() {
					for _, s := range secs[:2] {
						if got := s.status().Refs; !maps.Equal(got, at(&h2)()) {
							t.Errorf("secondary %s holds %v after the apply that failed only on c, want %s = %s", s.name, got, key, h2)
						}
					}
				},
				Config:      config,
				PlanOnly:    true,
				ExpectError: errorLike("Cannot reach secondary daemon", c.URL),
			},
			// c is back, but the primary cannot serve objects: the
			// daemons report the branch that failed, each on its own
			// instance, naming zone and branch.
			{
				PreConfig: func() {
					c.start()
					p.failObjects.Store(true)
					h3 = p.commit(zone, "main")
				},
				Config:      config,
				ExpectError: errorLike("Replica pull failed", "Branch main of zone example.com.", "secondary "+c.URL, "500"),
			},
			// The primary recovers: the apply converges, every secondary
			// moving to the commit it could not pull before.
			{
				PreConfig:         func() { p.failObjects.Store(false) },
				Config:            config,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: planFleet(secs, plancheck.ResourceActionUpdate, func(string) map[string]string { return at(&h3)() })},
				ConfigStateChecks: fleetHolds(secs, func(string) map[string]string { return at(&h3)() }),
			},
			destroyFleet(secs),
		},
	})
}

// TestAccSecondaryResource_tokens: the control token from the resource,
// from ZONEGIT_SECONDARY_TOKEN and from ZONEGIT_SECONDARY_TOKEN_FILE; a
// wrong one is an error on control_token naming where it came from; none
// at all is an error too.
func TestAccSecondaryResource_tokens(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	h1 := p.commit("example.com.", "main")
	a := newTestSecondary(t, "a", p.URL, secondaryOptions{Token: "token-of-a"})
	b := newTestSecondary(t, "b", p.URL, secondaryOptions{Token: "token-of-b"})
	dir := t.TempDir()
	goodFile := filepath.Join(dir, "good")
	badFile := filepath.Join(dir, "bad")
	writeFile(t, goodFile, "token-of-b\n")
	writeFile(t, badFile, "not-the-token\n")
	config := fmt.Sprintf(`
provider "zonegit" {}

resource "zonegit_secondary" "a" {
  url           = %q
  control_token = "token-of-a"
}

resource "zonegit_secondary" "b" {
  url = %q
}
`, a.URL, b.URL)
	want := func() map[string]string { return map[string]string{"example.com./main": h1} }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return fleetCleared([]*testSecondary{a, b})()
		},
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					t.Setenv("ZONEGIT_SECONDARY_TOKEN", "")
					t.Setenv("ZONEGIT_SECONDARY_TOKEN_FILE", "")
				},
				Config:      config,
				ExpectError: errorLike("Missing control token", b.URL, "ZONEGIT_SECONDARY_TOKEN"),
			},
			{
				PreConfig:         func() { t.Setenv("ZONEGIT_SECONDARY_TOKEN", "token-of-b") },
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{daemonHolds(a, want), daemonHolds(b, want)},
			},
			// follow = true on a daemon started without --follow.
			{
				Config:      strings.Replace(config, "url = "+fmt.Sprintf("%q", b.URL), "url = "+fmt.Sprintf("%q", b.URL)+"\n  follow = true", 1),
				PlanOnly:    true,
				ExpectError: errorLike("Secondary daemon cannot follow", b.URL, "--follow"),
			},
			// A pin the daemon's primary does not have: the plan fails on
			// the pin, naming it, as the daemon reported it (422).
			{
				Config: strings.Replace(config, "url = "+fmt.Sprintf("%q", b.URL), "url = "+fmt.Sprintf("%q", b.URL)+
					fmt.Sprintf("\n  pins = { %q = %q }", "example.com./main", strings.Repeat("ab", 32)), 1),
				PlanOnly:    true,
				ExpectError: errorLike("Pinned commit not on the primary", b.URL, "example.com./main"),
			},
			// Import by URL, with the provider's token.
			{
				Config:                  config,
				ResourceName:            "zonegit_secondary.b",
				ImportState:             true,
				ImportStateId:           b.URL,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"last_pull"},
			},
			{
				PreConfig: func() {
					t.Setenv("ZONEGIT_SECONDARY_TOKEN", "")
					t.Setenv("ZONEGIT_SECONDARY_TOKEN_FILE", badFile)
				},
				Config:      config,
				PlanOnly:    true,
				ExpectError: errorLike("refused the control token", b.URL, "ZONEGIT_SECONDARY_TOKEN_FILE"),
			},
			{
				PreConfig: func() { t.Setenv("ZONEGIT_SECONDARY_TOKEN_FILE", goodFile) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

// TestAccSecondaryResource_tls: daemons over https; one trusted through the
// provider's ca_cert_pem, one through its own ca_cert_pem with its own
// client certificate (mutual TLS), which replace the provider's.
func TestAccSecondaryResource_tls(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	h1 := p.commit("example.com.", "main")
	caA, caB := testpki.New(t), testpki.New(t)
	serverTLS := func(ca *testpki.PKI, mutual bool) *tls.Config {
		certPEM, keyPEM := ca.ServerCert(t)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c := &tls.Config{Certificates: []tls.Certificate{cert}}
		if mutual {
			c.ClientCAs, c.ClientAuth = ca.Pool, tls.RequireAndVerifyClientCert
		}
		return c
	}
	a := newTestSecondary(t, "a", p.URL, secondaryOptions{TLS: serverTLS(caA, false)})
	b := newTestSecondary(t, "b", p.URL, secondaryOptions{TLS: serverTLS(caB, true)})
	clientCert, clientKey := caB.ClientCert(t, "terraform")
	b.clientCert, b.clientKey = string(clientCert), string(clientKey)
	config := fmt.Sprintf(`
provider "zonegit" {
  secondary_token = %q
  ca_cert_pem     = %s
}

resource "zonegit_secondary" "a" {
  url = %q
}

resource "zonegit_secondary" "b" {
  url             = %q
  ca_cert_pem     = %s
  client_cert_pem = %s
  client_key_pem  = %s
}
`, secondaryToken, hcl(string(caA.CAPEM)), a.URL, b.URL, hcl(string(caB.CAPEM)), hcl(string(clientCert)), hcl(string(clientKey)))
	want := func() map[string]string { return map[string]string{"example.com./main": h1} }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{daemonHolds(a, want), daemonHolds(b, want)},
			},
			// Without its own CA, b's certificate is not trusted.
			{
				Config:      strings.Replace(config, "ca_cert_pem     = "+hcl(string(caB.CAPEM)), "", 1),
				PlanOnly:    true,
				ExpectError: errorLike("Cannot reach secondary daemon", b.URL, "certificate"),
			},
		},
	})
}

// TestAccSecondaryResource_unknownURL: a URL known only at apply time gives
// unknown refs in the plan; the apply plans them then.
func TestAccSecondaryResource_unknownURL(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	h1 := p.commit("example.com.", "main")
	a := newTestSecondary(t, "a", p.URL, secondaryOptions{})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "zonegit" {
  secondary_token = %q
}

resource "terraform_data" "url" {
  input = %q
}

resource "zonegit_secondary" "a" {
  url = terraform_data.url.output
}
`, secondaryToken, a.URL),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectUnknownValue("zonegit_secondary.a", tfjsonpath.New("refs")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				expectRefs("zonegit_secondary.a", func() map[string]string { return map[string]string{"example.com./main": h1} }),
				daemonHolds(a, func() map[string]string { return map[string]string{"example.com./main": h1} }),
			},
		}},
	})
}

// writeFile writes a test file, failing the test on error.
func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// realSecondary is `zonegit-replicate secondary` built from this tree and
// run as its own process.
type realSecondary struct {
	URL string
	cmd *exec.Cmd
	mu  sync.Mutex
	log strings.Builder
}

func (r *realSecondary) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(b)
}

func (r *realSecondary) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// startRealSecondary builds zonegit-replicate and starts `secondary` on a
// free loopback port, stopped (SIGTERM) at the end of the test.
func startRealSecondary(t *testing.T, args ...string) *realSecondary {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the test stops the daemon with SIGTERM")
	}
	bin := filepath.Join(t.TempDir(), "zonegit-replicate")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/zonegit-replicate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := &realSecondary{}
	r.cmd = exec.Command(bin, append([]string{"secondary", "--listen", "127.0.0.1:0"}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = r, r
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		if err := r.cmd.Wait(); err != nil {
			t.Errorf("zonegit-replicate secondary: %v\n%s", err, r.output())
		}
	})
	serving := regexp.MustCompile(`serving .* on (https?://[0-9.:]+)`)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := serving.FindStringSubmatch(r.output()); m != nil {
			r.URL = m[1]
			return r
		}
	}
	t.Fatalf("zonegit-replicate secondary printed no address:\n%s", r.output())
	return nil
}

// TestAccSecondaryResource_follow: the real daemon binary with --follow.
// With follow = true a commit on the primary reaches the secondary by
// itself (the test measures how many intervals it took) while a pinned
// branch stays, and the next plan is empty; with follow = false the daemon
// holds the applied refs and the plan shows the move; destroy stops the
// following and keeps the data.
func TestAccSecondaryResource_follow(t *testing.T) {
	const interval = 200 * time.Millisecond
	p := newTestPrimary(t, primaryOptions{})
	const com, org = "example.com./main", "example.org./main"
	c1 := p.commit("example.com.", "main")
	o1 := p.commit("example.org.", "main")
	var c2, c3, o2 string
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "control-token")
	writeFile(t, tokenFile, secondaryToken+"\n")
	d := startRealSecondary(t, "--repo", filepath.Join(dir, "replica"), "--primary", p.URL,
		"--control-token-file", tokenFile, "--follow", interval.String())
	ctl, err := secondary.NewControlClient(d.URL, secondary.ControlOptions{Token: secondaryToken})
	if err != nil {
		t.Fatal(err)
	}
	status := func() *secondary.Status {
		st, err := ctl.Status(context.Background())
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return st
	}
	config := func(follow bool) string {
		return fmt.Sprintf(`
provider "zonegit" {
  secondary_token = %q
}

resource "zonegit_secondary" "ns1" {
  url    = %q
  follow = %v
  pins   = { %q = %q }
}
`, secondaryToken, d.URL, follow, org, o1)
	}
	refs := func(c *string) func() map[string]string {
		return func() map[string]string { return map[string]string{com: *c, org: o1} }
	}
	const addr = "zonegit_secondary.ns1"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			st := status()
			if st.Desired != nil || len(st.Refs) == 0 {
				return fmt.Errorf("after destroy: desired state %+v, refs %v; want no desired state and the data kept", st.Desired, st.Refs)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config:            config(true),
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(addr, refs(&c1))},
			},
			// The primary moves: the daemon follows by itself, the pinned
			// branch stays, and the next plan is empty.
			{
				PreConfig: func() {
					c2 = p.commit("example.com.", "main")
					o2 = p.commit("example.org.", "main")
					start := time.Now()
					for status().Refs[com] != c2 {
						if time.Since(start) > time.Minute {
							t.Fatalf("the following daemon did not take %s = %s in a minute: %v", com, c2, status().Refs)
						}
						time.Sleep(interval / 10)
					}
					t.Logf("following: the commit reached the daemon after %s (%.1f intervals of %s)",
						time.Since(start).Round(time.Millisecond), float64(time.Since(start))/float64(interval), interval)
					if got := status().Refs[org]; got != o1 {
						t.Errorf("pinned %s moved to %s (the primary has %s), want it held at %s", org, got, o2, o1)
					}
				},
				Config:           config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// follow = false: the daemon holds what it has.
			{
				Config:            config(false),
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(addr, refs(&c2))},
			},
			{
				PreConfig: func() {
					c3 = p.commit("example.com.", "main")
					time.Sleep(5 * interval)
					if got := status().Refs[com]; got != c2 {
						t.Errorf("with follow = false the daemon moved %s to %s, want it held at %s", com, got, c2)
					}
				},
				Config: config(false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
					expectPlannedRefs(addr, refs(&c3)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{expectRefs(addr, refs(&c3))},
			},
		},
	})
	// Destroyed: no longer following.
	c4 := p.commit("example.com.", "main")
	time.Sleep(5 * interval)
	if got := status().Refs[com]; got != c3 {
		t.Errorf("after destroy the daemon moved %s to %s (the primary's %s), want it held at %s", com, got, c4, c3)
	}
}
