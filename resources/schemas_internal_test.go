package resources

import (
	"context"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// typeNameInText is how pulumi-terraform-bridge (v3.120) finds a resource
// or data source type named in a resource attribute's or a provider
// setting's description; it rewrites each into a Pulumi token and, with
// this provider's one-module tokens, panics. (Top-level descriptions and
// data source arguments are not rewritten.)
var typeNameInText = regexp.MustCompile("[\\s\"`\\[]zonegit_(replica|secondary|refs|records)[\\s\"`\\]]")

func TestSchemas(t *testing.T) {
	ctx := context.Background()
	for name, r := range map[string]resource.Resource{
		"zonegit_replica": NewReplicaResource(), "zonegit_secondary": NewSecondaryResource(),
	} {
		var rs resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &rs)
		if diags := rs.Schema.ValidateImplementation(ctx); diags.HasError() {
			t.Fatalf("%s schema: %v", name, diags)
		}
		for attr, a := range rs.Schema.Attributes {
			if a.GetMarkdownDescription() == "" {
				t.Errorf("%s.%s has no MarkdownDescription", name, attr)
			}
			if m := typeNameInText.FindString(a.GetMarkdownDescription()); m != "" {
				t.Errorf("%s.%s names the type %s in its description: the Pulumi bridge's schema generator "+
					"panics on that (make pulumi-schema); say \"a replica resource\" instead", name, attr, m)
			}
		}
	}
	var ds datasource.SchemaResponse
	NewRefsDataSource().Schema(ctx, datasource.SchemaRequest{}, &ds)
	if diags := ds.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatalf("zonegit_refs schema: %v", diags)
	}
	for name, a := range ds.Schema.Attributes {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("zonegit_refs.%s has no MarkdownDescription", name)
		}
	}
}
