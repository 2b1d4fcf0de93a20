// Command pulumi-tfgen-zonegit generates the Pulumi package schema of the
// zonegit provider: `pulumi-tfgen-zonegit schema --out bridge` writes
// bridge/schema.json and bridge/bridge-metadata.json (make pulumi-schema).
package main

import (
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"github.com/zonegit/terraform-provider-zonegit/pulumi/bridge"
)

// version is set at build time like pulumi-resource-zonegit's; the schema
// leaves it out, so it does not change schema.json.
var version = "0.0.0-dev"

func main() {
	pftfgen.Main(bridge.Name, bridge.Provider(version))
}
