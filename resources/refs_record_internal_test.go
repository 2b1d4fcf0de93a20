package resources

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

func TestRefsRecordRoundTrip(t *testing.T) {
	refs := &replicate.RefsResponse{
		Zones:    []string{"example.com."},
		Branches: []replicate.Branch{{Zone: "example.com.", Name: "main", Hash: strings.Repeat("a", 64)}},
	}
	p := fakePrivate{privateKeyPrimaryRefs: encodeRefsRecord("http://a", refs)}
	got := loadRefsRecord(context.Background(), p, "http://a")
	if got == nil || len(got.Branches) != 1 || got.Branches[0] != refs.Branches[0] {
		t.Errorf("round trip: %+v", got)
	}
	if loadRefsRecord(context.Background(), p, "http://b") != nil {
		t.Error("a record of another primary was used")
	}
	if loadRefsRecord(context.Background(), fakePrivate{}, "http://a") != nil {
		t.Error("no record: got one")
	}
}

// fakePrivate is private state holding the given keys.
type fakePrivate map[string][]byte

func (f fakePrivate) GetKey(_ context.Context, key string) ([]byte, diag.Diagnostics) {
	return f[key], nil
}
