package replicate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// FuzzClientDecodeRefs: refs decoding never panics, and Plan over whatever
// decodes never panics and only targets valid names and hashes.
func FuzzClientDecodeRefs(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"zones":["example.com."],"branches":[{"zone":"example.com.","name":"main","hash":"` + h + `"}]}`))
	f.Add([]byte(`{"zones":null,"branches":null}`))
	f.Add([]byte(`{"branches":[{"zone":"../x","name":"a/b","hash":"zz"}],"tags":[{"zone":"a.","name":"..","hash":"` + h + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := wire.DecodeRefs(bytes.NewReader(data))
		if err != nil {
			return
		}
		plan, err := Plan(refs, nil, PullOptions{Prune: true})
		if err != nil {
			t.Fatalf("Plan with no options failed: %v", err)
		}
		for _, tg := range append(plan.Targets, plan.Tags...) {
			if repo.ValidateZone(tg.Zone) != nil || repo.ValidateRefName("ref", tg.Name) != nil {
				t.Fatalf("invalid target %+v", tg)
			}
			if _, err := repo.ParseHash(tg.Hash); err != nil {
				t.Fatalf("invalid target hash %+v", tg)
			}
		}
	})
}

// TestPlanValidation: Plan keeps only the advertised branches it can store
// (the others are Invalid, not targets), refuses bad filters and pins, and
// prunes within the selection only.
func TestPlanValidation(t *testing.T) {
	h := strings.Repeat("ab", 32)
	refs := &RefsResponse{Branches: []Branch{
		{Zone: "example.com.", Name: "main", Hash: h},
		{Zone: "example.com.", Name: "../../etc", Hash: h},
		{Zone: "EXAMPLE.com.", Name: "main", Hash: h},
		{Zone: "example.com.", Name: "bad", Hash: "xyz"},
	}}
	p, err := Plan(refs, nil, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || len(p.Invalid) != 3 {
		t.Fatalf("targets %+v invalid %+v", p.Targets, p.Invalid)
	}
	for _, bad := range []PullOptions{
		{Zones: []string{"["}},
		{Branches: []string{"a/b"}},
		{Pins: map[string]string{"nozone": h}},
		{Pins: map[string]string{"example.com./main": "00"}},
		{Pins: map[string]string{"example.com/main": h}},
	} {
		if _, err := Plan(refs, nil, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	local := []repo.Ref{{Zone: "example.com.", Name: "gone"}, {Zone: "example.com.", Name: "pinned"}, {Zone: "other.", Name: "gone"}}
	p, err = Plan(refs, local, PullOptions{Prune: true, Zones: []string{"example.*"}, Pins: map[string]string{"example.com./pinned": h}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Prune) != 1 || p.Prune[0].Name != "gone" || p.Prune[0].Zone != "example.com." {
		t.Errorf("prune %+v", p.Prune)
	}
	refsMap := p.Refs(local)
	if refsMap["example.com./pinned"] != h || refsMap["example.com./main"] != h {
		t.Errorf("Refs %v", refsMap)
	}
	if _, ok := refsMap["example.com./gone"]; ok {
		t.Errorf("pruned branch in Refs: %v", refsMap)
	}
}

// With PinsOnly, a branch the primary advertises without a pin is not a
// target (the apply of a reviewed plan must not pick up a branch created
// after the plan), and the pins are every branch to keep: with Prune, a
// local branch without a pin goes whether the primary advertises it or not.
func TestPlanPinsOnly(t *testing.T) {
	h1, h2 := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	refs := &RefsResponse{Branches: []Branch{
		{Zone: "example.com.", Name: "main", Hash: h1},
		{Zone: "example.com.", Name: "new", Hash: h1},
	}}
	local := []repo.Ref{{Zone: "example.com.", Name: "new"}, {Zone: "example.com.", Name: "gone"}}
	p, err := Plan(refs, local, PullOptions{PinsOnly: true, Prune: true, Pins: map[string]string{"example.com./main": h2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || p.Targets[0].Name != "main" || p.Targets[0].Hash != h2 || !p.Targets[0].Pinned {
		t.Errorf("targets %+v, want only the pinned main at %s", p.Targets, h2[:12])
	}
	if len(p.Prune) != 2 || p.Prune[0].Name != "new" || p.Prune[1].Name != "gone" {
		t.Errorf("prune %+v, want new and gone", p.Prune)
	}
}
