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
