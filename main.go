// Command terraform-provider-zonegit is the zonegit Terraform provider. Terraform
// starts it; run it with -debug to attach a debugger (see the provider
// development documentation for TF_REATTACH_PROVIDERS).
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/zonegit/terraform-provider-zonegit/provider"
)

// Generate the documentation in docs/ from the schema and examples/ with
// tfplugindocs, offline, using Terraform or OpenTofu (see tools/gen-docs.sh).
//go:generate bash tools/gen-docs.sh

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "set to true to run the provider with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address:         "registry.terraform.io/zonegit/zonegit",
		Debug:           debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}
