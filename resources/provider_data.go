// Package resources implements the zonegit provider's resources and data
// sources: zonegit_replica (a local secondary kept in sync with a primary),
// zonegit_secondary (a remote secondary daemon moved by its control API),
// zonegit_refs (a primary's branch tips as data) and zonegit_records (the
// records of one commit as data).
//
// The provider package configures one ProviderData value and hands it to every
// resource and data source; this package never imports the provider.
package resources

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// ProviderData is the configured provider as resources see it: the client
// settings every replication request uses, and the provider's version.
type ProviderData struct {
	// Client holds transport, auth and retry settings. PrimaryURL is the
	// provider-level default; a resource's own primary_url overrides it.
	Client replicate.ClientOptions
	// Version is the provider's release version ("dev" for local builds).
	Version string
	// SecondaryToken is the default control token of secondary daemons
	// (zonegit_secondary), and SecondaryTokenFrom where it came from
	// (attribute, variable or file; never the value), for messages.
	SecondaryToken     string
	SecondaryTokenFrom string
	// PlanReadsPrimaryRefs makes zonegit_replica's plan ask the primary for
	// its refs every time instead of using the snapshot the last refresh kept
	// (privateKeyPrimaryRefs). It is for hosts that plan without refreshing
	// first, such as Pulumi, where that snapshot is as old as the last
	// `pulumi refresh` or up; there the plan and the apply it leads to run
	// back to back in one call, so there is no second plan to agree with.
	// Terraform and OpenTofu refresh before every plan: false for them.
	PlanReadsPrimaryRefs bool
}

// providerDataFrom converts the value passed to Configure. A nil value means
// the provider is not configured yet (Terraform calls Configure early during
// validation); the caller then keeps a nil *ProviderData.
func providerDataFrom(v any) (*ProviderData, diag.Diagnostics) {
	var diags diag.Diagnostics
	if v == nil {
		return nil, diags
	}
	data, ok := v.(*ProviderData)
	if !ok {
		diags.AddError(
			"Unexpected provider data",
			fmt.Sprintf("Expected *resources.ProviderData, got %T. This is a bug in the zonegit provider; please report it.", v),
		)
		return nil, diags
	}
	return data, diags
}
