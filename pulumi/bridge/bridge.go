// Package bridge describes the zonegit Terraform provider to
// pulumi-terraform-bridge: the Pulumi package "zonegit", whose resources and
// functions are the provider's resources and data sources, every one in the
// module "index" (zonegit_replica is zonegit:index:Replica, the data source
// zonegit_refs is the function zonegit:index:getRefs).
//
// The schema tfgen generates from this description (schema.json) and the
// bridge's metadata about it (bridge-metadata.json) are checked in next to
// this file and embedded: the provider binary serves them as they are.
package bridge

import (
	_ "embed" // the generated files below
	"fmt"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"

	"github.com/zonegit/terraform-provider-zonegit/provider"
)

// Name is the Pulumi package name, and the prefix of the Terraform type
// names ("zonegit_replica").
const Name = "zonegit"

// Schema is the generated Pulumi package schema (make pulumi-schema).
//
//go:embed schema.json
var Schema []byte

//go:embed bridge-metadata.json
var metadata []byte

// Provider is the bridge's description of the provider at version, which
// must be a semantic version (Pulumi's plugin versions are).
func Provider(version string) tfbridge.ProviderInfo {
	p := provider.NewWithOptions(version, provider.Options{
		// Pulumi does not refresh before a preview or an up, so the
		// replica's plan would compare against the primary's refs as of the
		// last `pulumi refresh` or up and miss every commit since. With this
		// the plan reads the primary's refs itself, and preview shows (and up
		// pulls) the primary's tips of that moment.
		PlanReadsPrimaryRefs: true,
	})()
	info := tfbridge.ProviderInfo{
		P:            pftfbridge.ShimProvider(p),
		Name:         Name,
		Version:      version,
		DisplayName:  "zonegit",
		Publisher:    "zonegit",
		Description:  "Replicates DNS zones from a zonegit primary into local zonegit repositories.",
		Keywords:     []string{"zonegit", "dns", "replication", "category/network"},
		Homepage:     "https://github.com/zonegit/terraform-provider-zonegit",
		Repository:   "https://github.com/zonegit/terraform-provider-zonegit",
		GitHubOrg:    "zonegit",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		// Not EnableAccuratePFBridgePreview: Pulumi shows a resource's diff
		// with new values from its inputs only, so it would show refs, which is
		// output only, as deleted (- refs) when the primary moves. Without it
		// a preview says the replica updates, and the new refs show wherever
		// the program uses them (examples/pulumi exports them).
	}
	// Every resource and data source gets its token from its Terraform type
	// name, so one added to the provider is bridged without a change here:
	// zonegit_<name> => zonegit:index:<Name>, data source => zonegit:index:get<Name>.
	info.MustComputeTokens(tokens.SingleModule(Name+"_", "index",
		func(module, name string) (string, error) {
			return fmt.Sprintf("%s:%s:%s", Name, module, name), nil
		}))
	return info
}

// Metadata is what the provider binary passes to pftfbridge.Main.
func Metadata() pftfbridge.ProviderMetadata {
	return pftfbridge.ProviderMetadata{PackageSchema: Schema}
}
