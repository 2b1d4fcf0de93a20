package bridge

import (
	"strings"
	"testing"

	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
)

// Every resource and data source the provider has is bridged, with the
// token its Terraform name gives, without a line here naming it.
func TestTokens(t *testing.T) {
	info := Provider("0.0.1")
	want := map[string]string{
		"zonegit_replica":   "zonegit:index:Replica",
		"zonegit_secondary": "zonegit:index:Secondary",
	}
	wantFns := map[string]string{
		"zonegit_refs":    "zonegit:index:getRefs",
		"zonegit_records": "zonegit:index:getRecords",
	}
	n := 0
	info.P.ResourcesMap().Range(func(name string, _ shim.Resource) bool {
		n++
		r := info.Resources[name]
		if r == nil || r.Tok == "" {
			t.Errorf("resource %s has no token", name)
			return true
		}
		if tok := string(r.Tok); !strings.HasPrefix(tok, "zonegit:index:") || (want[name] != "" && tok != want[name]) {
			t.Errorf("resource %s: token %s", name, tok)
		}
		delete(want, name)
		return true
	})
	info.P.DataSourcesMap().Range(func(name string, _ shim.Resource) bool {
		n++
		d := info.DataSources[name]
		if d == nil || d.Tok == "" {
			t.Errorf("data source %s has no token", name)
			return true
		}
		if tok := string(d.Tok); !strings.HasPrefix(tok, "zonegit:index:get") || (wantFns[name] != "" && tok != wantFns[name]) {
			t.Errorf("data source %s: token %s", name, tok)
		}
		delete(wantFns, name)
		return true
	})
	if len(want)+len(wantFns) > 0 {
		t.Errorf("not bridged: %v %v", want, wantFns)
	}
	if n != len(info.Resources)+len(info.DataSources) {
		t.Errorf("%d resources and data sources, %d tokens", n, len(info.Resources)+len(info.DataSources))
	}
}
