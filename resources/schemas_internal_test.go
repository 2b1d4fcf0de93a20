package resources

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

func TestSchemas(t *testing.T) {
	ctx := context.Background()
	var rs resource.SchemaResponse
	NewReplicaResource().Schema(ctx, resource.SchemaRequest{}, &rs)
	if diags := rs.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatalf("zonegit_replica schema: %v", diags)
	}
	for name, a := range rs.Schema.Attributes {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("zonegit_replica.%s has no MarkdownDescription", name)
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
