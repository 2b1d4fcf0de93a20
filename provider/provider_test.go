package provider_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	zonegit "github.com/zonegit/terraform-provider-zonegit/provider"
)

var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"zonegit": providerserver.NewProtocol6WithError(zonegit.New("test")()),
}

// errorLike matches an error containing each part in order; spaces match
// any whitespace because Terraform wraps diagnostics.
func errorLike(parts ...string) *regexp.Regexp {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(quoted, ".*"))
}

// TestProviderSchema checks the schema is valid for the framework.
func TestProviderSchema(t *testing.T) {
	ctx := context.Background()
	resp := &provider.SchemaResponse{}
	zonegit.New("test")().Schema(ctx, provider.SchemaRequest{}, resp)
	if resp.Diagnostics.HasError() {
		t.Fatalf("schema: %v", resp.Diagnostics)
	}
	if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatalf("schema implementation: %v", diags)
	}
	for name, attr := range resp.Schema.Attributes {
		if attr.GetMarkdownDescription() == "" {
			t.Errorf("attribute %s has no MarkdownDescription", name)
		}
	}
	for _, secret := range []string{"token", "client_key_pem", "headers"} {
		if !resp.Schema.Attributes[secret].IsSensitive() {
			t.Errorf("%s is not sensitive", secret)
		}
	}
}

// TestAccProvider_configValidation: configuration mistakes are caught
// before any request, with an error naming the attribute and the fix.
func TestAccProvider_configValidation(t *testing.T) {
	config := func(body string) string {
		return fmt.Sprintf(`
provider "zonegit" {
%s
}

data "zonegit_refs" "test" {}
`, body)
	}
	const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config(`primary_url = "ftp://primary.example:9354"`),
				ExpectError: errorLike("Invalid primary URL", `scheme "ftp"`, "http:// or https://"),
			},
			{
				Config:      config(`primary_url = "primary.example:9354"`),
				ExpectError: errorLike("Invalid primary URL"),
			},
			{
				Config:      config(fmt.Sprintf("client_cert_pem = %q", pem)),
				ExpectError: errorLike("Missing client key", "client_cert_pem", "ZONEGIT_CLIENT_KEY_PEM"),
			},
			{
				Config:      config(`client_key_pem = "key"`),
				ExpectError: errorLike("Missing client certificate", "client_key_pem", "ZONEGIT_CLIENT_CERT_PEM"),
			},
			{
				Config:      config(fmt.Sprintf("insecure = true\nca_cert_pem = %q", pem)),
				ExpectError: errorLike(`Attribute "ca_cert_pem" cannot be specified when "insecure" is specified`),
			},
			{
				Config:      config("retry {\n  min_delay_ms = 500\n  max_delay_ms = 100\n}"),
				ExpectError: errorLike("Invalid retry delays", "retry.min_delay_ms (500) is greater than retry.max_delay_ms (100)"),
			},
			{
				Config:      config("retry {\n  min_delay_ms = 9000\n}"),
				ExpectError: errorLike("Invalid retry delays", "(5000, the default)"),
			},
			{
				Config:      config("retry {\n  attempts = -1\n}"),
				ExpectError: errorLike("retry.attempts", "at least 0"),
			},
			{
				Config:      config(`request_timeout = "soon"`),
				ExpectError: errorLike("Invalid duration", `"soon" is not a duration`),
			},
			{
				Config:      config(`request_timeout = "-5s"`),
				ExpectError: errorLike("Invalid duration", "not positive"),
			},
			{
				Config:      config(`concurrency = 0`),
				ExpectError: errorLike("concurrency", "between 1 and 256"),
			},
			{
				Config:      config(`ca_cert_pem = "not a certificate"`),
				ExpectError: errorLike("Invalid CA certificate", "no PEM-encoded certificate"),
			},
			{
				Config:      config(fmt.Sprintf("client_cert_pem = %q\nclient_key_pem = \"key\"", pem)),
				ExpectError: errorLike("Invalid client certificate"),
			},
			// Without any primary URL, the data source says where to set one.
			{
				Config:      config(""),
				ExpectError: errorLike("Missing primary URL", "ZONEGIT_PRIMARY_URL"),
			},
		},
	})
}

// TestAccProvider_envPrimaryURL: a bad ZONEGIT_PRIMARY_URL is reported
// against primary_url, naming the variable.
func TestAccProvider_envPrimaryURL(t *testing.T) {
	t.Setenv("ZONEGIT_PRIMARY_URL", "gopher://primary.example")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      `data "zonegit_refs" "test" {}`,
				ExpectError: errorLike("Invalid primary URL", "ZONEGIT_PRIMARY_URL", `scheme "gopher"`),
			},
		},
	})
}
