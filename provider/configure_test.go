package provider_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	zonegit "github.com/zonegit/terraform-provider-zonegit/provider"
	"github.com/zonegit/terraform-provider-zonegit/resources"
)

// configure runs the provider's Configure with the given attribute values;
// every other attribute is null.
func configure(t *testing.T, values map[string]tftypes.Value) *provider.ConfigureResponse {
	t.Helper()
	ctx := context.Background()
	p := zonegit.New("1.2.3")()
	var sresp provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &sresp)
	typ := sresp.Schema.Type().TerraformType(ctx).(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		if v, ok := values[name]; ok {
			vals[name] = v
		} else {
			vals[name] = tftypes.NewValue(at, nil)
		}
	}
	resp := &provider.ConfigureResponse{}
	p.Configure(ctx, provider.ConfigureRequest{
		Config: tfsdk.Config{Schema: sresp.Schema, Raw: tftypes.NewValue(typ, vals)},
	}, resp)
	return resp
}

func TestConfigure_settings(t *testing.T) {
	retryType := tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"attempts": tftypes.Number, "min_delay_ms": tftypes.Number, "max_delay_ms": tftypes.Number,
	}}
	resp := configure(t, map[string]tftypes.Value{
		"primary_url":     tftypes.NewValue(tftypes.String, "https://primary.example:9354"),
		"token":           tftypes.NewValue(tftypes.String, "t0ken"),
		"headers":         tftypes.NewValue(tftypes.Map{ElementType: tftypes.String}, map[string]tftypes.Value{"X-Team": tftypes.NewValue(tftypes.String, "dns")}),
		"request_timeout": tftypes.NewValue(tftypes.String, "45s"),
		"concurrency":     tftypes.NewValue(tftypes.Number, 3),
		"retry": tftypes.NewValue(retryType, map[string]tftypes.Value{
			"attempts":     tftypes.NewValue(tftypes.Number, 0),
			"min_delay_ms": tftypes.NewValue(tftypes.Number, 10),
			"max_delay_ms": tftypes.NewValue(tftypes.Number, 50),
		}),
	})
	if resp.Diagnostics.HasError() {
		t.Fatalf("configure: %v", resp.Diagnostics)
	}
	data, ok := resp.ResourceData.(*resources.ProviderData)
	if !ok || resp.DataSourceData != resp.ResourceData {
		t.Fatalf("ResourceData = %T, DataSourceData = %T; want the same *resources.ProviderData", resp.ResourceData, resp.DataSourceData)
	}
	o := data.Client
	if o.PrimaryURL != "https://primary.example:9354" || o.Token != "t0ken" || o.Headers["X-Team"] != "dns" {
		t.Errorf("url/token/headers = %q %q %v", o.PrimaryURL, o.Token, o.Headers)
	}
	if o.RequestTimeout != 45*time.Second || o.Concurrency != 3 {
		t.Errorf("timeout/concurrency = %v %d", o.RequestTimeout, o.Concurrency)
	}
	// attempts = 0 must mean "no retries", which the client spells negative.
	if o.RetryAttempts >= 0 || o.RetryMinDelay != 10*time.Millisecond || o.RetryMaxDelay != 50*time.Millisecond {
		t.Errorf("retry = %d %v %v", o.RetryAttempts, o.RetryMinDelay, o.RetryMaxDelay)
	}
	if o.UserAgent != "terraform-provider-zonegit/1.2.3" || data.Version != "1.2.3" {
		t.Errorf("user agent %q, version %q", o.UserAgent, data.Version)
	}
}

func TestConfigure_environment(t *testing.T) {
	t.Setenv("ZONEGIT_PRIMARY_URL", "http://primary.example")
	t.Setenv("ZONEGIT_TOKEN", "from-env")
	resp := configure(t, nil)
	if resp.Diagnostics.HasError() {
		t.Fatalf("configure: %v", resp.Diagnostics)
	}
	o := resp.ResourceData.(*resources.ProviderData).Client
	if o.PrimaryURL != "http://primary.example" || o.Token != "from-env" {
		t.Errorf("url/token = %q %q, want the environment's", o.PrimaryURL, o.Token)
	}
	// Configuration wins over the environment.
	resp = configure(t, map[string]tftypes.Value{"token": tftypes.NewValue(tftypes.String, "from-config")})
	if got := resp.ResourceData.(*resources.ProviderData).Client.Token; got != "from-config" {
		t.Errorf("token = %q, want from-config", got)
	}
}

func TestConfigure_unknownNamesEnvironmentVariable(t *testing.T) {
	for attr, env := range map[string]string{"primary_url": "ZONEGIT_PRIMARY_URL", "token": "ZONEGIT_TOKEN"} {
		resp := configure(t, map[string]tftypes.Value{attr: tftypes.NewValue(tftypes.String, tftypes.UnknownValue)})
		if !resp.Diagnostics.HasError() {
			t.Fatalf("%s unknown: no error", attr)
		}
		d := resp.Diagnostics.Errors()[0]
		if d.Summary() != "Unknown zonegit provider setting" || !strings.Contains(d.Detail(), env) || !strings.Contains(d.Detail(), attr) {
			t.Errorf("%s unknown: %q / %q, want a detail naming %s", attr, d.Summary(), d.Detail(), env)
		}
		if resp.ResourceData != nil {
			t.Errorf("%s unknown: provider data was set", attr)
		}
	}
}

// TestConfigure_secretFiles: each secret comes from its variable or from
// the file its _FILE variable names; a token file is trimmed, PEM files
// are taken as they are; the configuration wins over both, and then a
// conflict between them does not matter.
func TestConfigure_secretFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("ZONEGIT_PRIMARY_URL", "http://primary.example")
	t.Setenv("ZONEGIT_TOKEN_FILE", file("token", "  from-file\n"))
	t.Setenv("ZONEGIT_CA_CERT_PEM_FILE", file("ca.pem", "not PEM\n"))
	resp := configure(t, nil)
	if d := resp.Diagnostics.Errors(); len(d) != 1 || d[0].Summary() != "Invalid CA certificate" ||
		!strings.Contains(d[0].Detail(), filepath.Join(dir, "ca.pem")) || !strings.Contains(d[0].Detail(), "ZONEGIT_CA_CERT_PEM_FILE") {
		t.Fatalf("diagnostics = %v, want one Invalid CA certificate naming the file and the variable", resp.Diagnostics)
	}

	t.Setenv("ZONEGIT_CA_CERT_PEM_FILE", "")
	resp = configure(t, nil)
	if resp.Diagnostics.HasError() {
		t.Fatalf("configure: %v", resp.Diagnostics)
	}
	if got := resp.ResourceData.(*resources.ProviderData).Client.Token; got != "from-file" {
		t.Errorf("token = %q, want the file's content without surrounding white space", got)
	}

	// Both the variable and the file: an error, unless the configuration
	// sets the attribute.
	t.Setenv("ZONEGIT_TOKEN", "from-env")
	resp = configure(t, nil)
	if d := resp.Diagnostics.Errors(); len(d) != 1 || d[0].Summary() != "Conflicting environment variables" {
		t.Fatalf("diagnostics = %v, want Conflicting environment variables", resp.Diagnostics)
	}
	resp = configure(t, map[string]tftypes.Value{"token": tftypes.NewValue(tftypes.String, "from-config")})
	if resp.Diagnostics.HasError() {
		t.Fatalf("configure: %v", resp.Diagnostics)
	}
	if got := resp.ResourceData.(*resources.ProviderData).Client.Token; got != "from-config" {
		t.Errorf("token = %q, want from-config", got)
	}
}
