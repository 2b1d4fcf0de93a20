// Command pulumi-resource-zonegit is the zonegit provider for Pulumi: the
// Terraform provider served through pulumi-terraform-bridge. Pulumi starts it;
// a program names it with plugins.providers (see the README's Pulumi section).
package main

import (
	"context"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"github.com/zonegit/terraform-provider-zonegit/pulumi/bridge"
)

// version is set at build time with -ldflags "-X main.version=...". Pulumi
// requires a semantic version.
var version = "0.0.0-dev"

func main() {
	pftfbridge.Main(context.Background(), bridge.Name, bridge.Provider(version), bridge.Metadata())
}
