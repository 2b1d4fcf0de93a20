package resources

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

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
