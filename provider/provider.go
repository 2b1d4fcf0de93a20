// Package provider is the zonegit Terraform provider: its configuration
// schema, the translation of that configuration into replication client
// settings, and the list of resources and data sources it offers.
package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/boolvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/resources"
)

var (
	_ provider.Provider                     = (*ZonegitProvider)(nil)
	_ provider.ProviderWithConfigValidators = (*ZonegitProvider)(nil)
)

// New returns a constructor for the provider at the given release version.
func New(version string) func() provider.Provider {
	return NewWithOptions(version, Options{})
}

// Options are what a program serving the provider to a host other than
// Terraform and OpenTofu changes; the zero value is the Terraform provider.
type Options struct {
	// PlanReadsPrimaryRefs: see resources.ProviderData.PlanReadsPrimaryRefs.
	PlanReadsPrimaryRefs bool
}

// NewWithOptions is New with Options.
func NewWithOptions(version string, opts Options) func() provider.Provider {
	return func() provider.Provider {
		return &ZonegitProvider{version: version, opts: opts}
	}
}

// ZonegitProvider is the zonegit provider.
type ZonegitProvider struct {
	// version is "dev" for local builds and the release version otherwise.
	version string
	opts    Options
}

// zonegitProviderModel is the provider configuration.
type zonegitProviderModel struct {
	PrimaryURL     types.String `tfsdk:"primary_url"`
	Token          types.String `tfsdk:"token"`
	Headers        types.Map    `tfsdk:"headers"`
	CACertPEM      types.String `tfsdk:"ca_cert_pem"`
	ClientCertPEM  types.String `tfsdk:"client_cert_pem"`
	ClientKeyPEM   types.String `tfsdk:"client_key_pem"`
	Insecure       types.Bool   `tfsdk:"insecure"`
	RequestTimeout types.String `tfsdk:"request_timeout"`
	Concurrency    types.Int64  `tfsdk:"concurrency"`
	Retry          *retryModel  `tfsdk:"retry"`
	SecondaryToken types.String `tfsdk:"secondary_token"`
}

// retryModel is the retry block.
type retryModel struct {
	Attempts   types.Int64 `tfsdk:"attempts"`
	MinDelayMs types.Int64 `tfsdk:"min_delay_ms"`
	MaxDelayMs types.Int64 `tfsdk:"max_delay_ms"`
}

func (p *ZonegitProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "zonegit"
	resp.Version = p.version
}

// Schema is one declaration per attribute with its documentation (the
// registry docs are generated from it): longer than 80 lines by nature.
func (p *ZonegitProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The zonegit provider replicates DNS zones from a zonegit primary into local zonegit " +
			"repositories (`zonegit_replica`), moves fleets of secondary daemons to reviewed commits " +
			"(`zonegit_secondary`), and reads a primary's branch tips as data (`zonegit_refs`).\n\n" +
			"zonegit stores zones the way git stores files: RRsets are content-addressed blobs, a zone is a " +
			"label-wise tree, and each zone has branches of commits. A primary serves its repository over HTTP; " +
			"this provider pulls exactly the commits a plan shows.",
		Attributes: map[string]schema.Attribute{
			"primary_url": schema.StringAttribute{
				MarkdownDescription: "Base URL of the zonegit primary, `http://` or `https://` (for example " +
					"`https://primary.example:9354`). Used by resources and data sources that do not set their own. " +
					"May also be set with the `" + EnvPrimaryURL + "` environment variable.",
				Optional:   true,
				Validators: []validator.String{resources.PrimaryURLValidator()},
			},
			"token": schema.StringAttribute{
				MarkdownDescription: "Bearer token sent to the primary (`Authorization: Bearer ...`). May also be set " +
					"with the `" + EnvToken + "` environment variable, or `" + EnvToken + FileSuffix + "` naming a " +
					"file that holds it (surrounding white space is ignored). Like all provider settings it is never " +
					"stored in state; *Secrets, state and plan files* above tells how to keep it out of saved plans too.",
				Optional:  true,
				Sensitive: true,
			},
			// Descriptions of provider settings name no resource type (such as
			// zonegit_secondary) in backticks: pulumi-terraform-bridge rewrites such
			// names in provider settings' text and panics on our one-module tokens.
			"secondary_token": schema.StringAttribute{
				MarkdownDescription: "Control token of the secondary daemons (`zonegit-replicate secondary " +
					"--control-token-file`), used by every secondary resource that does not set its own " +
					"`control_token`. It is a secret apart from `token`: the primary's token lets a reader pull, the " +
					"control token lets its holder move a secondary. May also be set with the `" + EnvSecondaryToken +
					"` environment variable, or `" + EnvSecondaryToken + FileSuffix + "` naming a file that holds it " +
					"(surrounding white space is ignored).",
				Optional:  true,
				Sensitive: true,
			},
			"headers": schema.MapAttribute{
				MarkdownDescription: "Extra HTTP headers sent with every request to the primary, such as an API " +
					"gateway's key. Sensitive: Terraform hides the values in its output.",
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
			},
			"ca_cert_pem": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded certificate authorities trusted, in addition to the system's, " +
					"when verifying an `https://` primary. May also be set with the `" + EnvCACertPEM + "` " +
					"environment variable, or `" + EnvCACertPEM + FileSuffix + "` naming a PEM file. Also trusted for " +
					"secondary daemons whose resource does not set its own.",
				Optional: true,
			},
			"client_cert_pem": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded client certificate for mutual TLS; needs the matching " +
					"`client_key_pem`. May also be set with the `" + EnvClientCertPEM + "` environment variable, or `" +
					EnvClientCertPEM + FileSuffix + "` naming a PEM file. Also presented to secondary daemons " +
					"whose resource does not set its own.",
				Optional: true,
			},
			"client_key_pem": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded private key of `client_cert_pem`. May also be set with the `" +
					EnvClientKeyPEM + "` environment variable, or `" + EnvClientKeyPEM + FileSuffix + "` naming a " +
					"PEM file, so the certificate can be in the configuration and the key come from a secret store.",
				Optional:  true,
				Sensitive: true,
			},
			"insecure": schema.BoolAttribute{
				MarkdownDescription: "Skip verification of the primary's TLS certificate (and of secondary daemons' that " +
					"set no `ca_cert_pem` of their own). Only for testing; prefer `ca_cert_pem`, which it conflicts " +
					"with. Defaults to `false`.",
				Optional: true,
				Validators: []validator.Bool{
					boolvalidator.ConflictsWith(path.MatchRoot("ca_cert_pem")),
				},
			},
			"request_timeout": schema.StringAttribute{
				MarkdownDescription: "Timeout of each HTTP request to the primary, as a Go duration such as `30s` " +
					"or `2m`. Defaults to `30s`.",
				Optional:   true,
				Validators: []validator.String{durationValidator{}},
			},
			"concurrency": schema.Int64Attribute{
				MarkdownDescription: "Parallel object requests when the primary does not offer batch transfer. " +
					"Defaults to `8`.",
				Optional:   true,
				Validators: []validator.Int64{int64validator.Between(1, 256)},
			},
		},
		Blocks: map[string]schema.Block{
			"retry": schema.SingleNestedBlock{
				MarkdownDescription: "Retries of requests that fail with a connection error, `429` or `5xx`, with " +
					"exponential backoff and jitter. `Retry-After` is honoured, capped at `max_delay_ms`.",
				Attributes: map[string]schema.Attribute{
					"attempts": schema.Int64Attribute{
						MarkdownDescription: "Retries after the first try; `0` disables retries. Defaults to `4`.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.AtLeast(0)},
					},
					"min_delay_ms": schema.Int64Attribute{
						MarkdownDescription: "Minimum delay between retries in milliseconds. Defaults to `200`.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.AtLeast(0)},
					},
					"max_delay_ms": schema.Int64Attribute{
						MarkdownDescription: "Maximum delay between retries in milliseconds, at least `min_delay_ms`. " +
							"Defaults to `5000`.",
						Optional:   true,
						Validators: []validator.Int64{int64validator.AtLeast(0)},
					},
				},
			},
		},
	}
}

func (p *ZonegitProvider) ConfigValidators(_ context.Context) []provider.ConfigValidator {
	return []provider.ConfigValidator{retryBoundsValidator{}}
}

// Configure turns the provider block and its environment variables into
// the client settings every resource uses. Longer than 80 lines because
// each setting is read, defaulted and checked in turn, with a diagnostic
// on its own attribute.
func (p *ZonegitProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var config zonegitProviderModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}

	// Unknown values (computed from resources not yet created) cannot
	// configure a client.
	unknown := func(attr, env string, isUnknown bool) {
		if !isUnknown {
			return
		}
		detail := fmt.Sprintf("The provider cannot build its replication client because %s is unknown until apply. "+
			"Set it to a value known at plan time", attr)
		if env != "" {
			detail += fmt.Sprintf(", or unset it and use the environment (%s)", env)
		}
		resp.Diagnostics.AddAttributeError(attrPath(attr), "Unknown zonegit provider setting", detail+".")
	}
	unknown("primary_url", EnvPrimaryURL, config.PrimaryURL.IsUnknown())
	unknown("token", envNames(EnvToken, true), config.Token.IsUnknown())
	unknown("secondary_token", envNames(EnvSecondaryToken, true), config.SecondaryToken.IsUnknown())
	unknown("headers", "", config.Headers.IsUnknown())
	unknown("ca_cert_pem", envNames(EnvCACertPEM, true), config.CACertPEM.IsUnknown())
	unknown("client_cert_pem", envNames(EnvClientCertPEM, true), config.ClientCertPEM.IsUnknown())
	unknown("client_key_pem", envNames(EnvClientKeyPEM, true), config.ClientKeyPEM.IsUnknown())
	unknown("insecure", "", config.Insecure.IsUnknown())
	unknown("request_timeout", "", config.RequestTimeout.IsUnknown())
	unknown("concurrency", "", config.Concurrency.IsUnknown())
	if config.Retry != nil {
		unknown("retry.attempts", "", config.Retry.Attempts.IsUnknown())
		unknown("retry.min_delay_ms", "", config.Retry.MinDelayMs.IsUnknown())
		unknown("retry.max_delay_ms", "", config.Retry.MaxDelayMs.IsUnknown())
	}
	if resp.Diagnostics.HasError() {
		return
	}

	// Each setting from the configuration, or else from the environment.
	resolve := func(v types.String, attr, env string, fileEnv, trim bool) setting {
		s, d := resolveSetting(v, attr, env, fileEnv, trim)
		resp.Diagnostics.Append(d...)
		return s
	}
	primaryURL := resolve(config.PrimaryURL, "primary_url", EnvPrimaryURL, false, false)
	token := resolve(config.Token, "token", EnvToken, true, true)
	caCert := resolve(config.CACertPEM, "ca_cert_pem", EnvCACertPEM, true, false)
	clientCert := resolve(config.ClientCertPEM, "client_cert_pem", EnvClientCertPEM, true, false)
	clientKey := resolve(config.ClientKeyPEM, "client_key_pem", EnvClientKeyPEM, true, false)
	secondaryToken := resolve(config.SecondaryToken, "secondary_token", EnvSecondaryToken, true, true)
	if resp.Diagnostics.HasError() {
		return
	}
	opts := replicate.ClientOptions{
		PrimaryURL:    primaryURL.value,
		Token:         token.value,
		CACertPEM:     caCert.value,
		ClientCertPEM: clientCert.value,
		ClientKeyPEM:  clientKey.value,
		Insecure:      config.Insecure.ValueBool(),
		Concurrency:   int(config.Concurrency.ValueInt64()),
		UserAgent:     "terraform-provider-zonegit/" + p.version,
	}
	if opts.PrimaryURL != "" && config.PrimaryURL.IsNull() {
		if err := resources.CheckPrimaryURL(opts.PrimaryURL); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("primary_url"), "Invalid primary URL",
				fmt.Sprintf("The %s environment variable: %v", EnvPrimaryURL, err))
		}
	}
	if !config.Headers.IsNull() {
		resp.Diagnostics.Append(config.Headers.ElementsAs(ctx, &opts.Headers, false)...)
	}
	if !config.RequestTimeout.IsNull() {
		// The schema validator has checked the syntax.
		opts.RequestTimeout, _ = time.ParseDuration(config.RequestTimeout.ValueString())
	}
	if config.Retry != nil {
		if !config.Retry.Attempts.IsNull() {
			opts.RetryAttempts = int(config.Retry.Attempts.ValueInt64())
			if opts.RetryAttempts == 0 {
				// ClientOptions' zero value means "default"; a negative
				// count means no retries.
				opts.RetryAttempts = -1
			}
		}
		opts.RetryMinDelay = time.Duration(config.Retry.MinDelayMs.ValueInt64()) * time.Millisecond
		opts.RetryMaxDelay = time.Duration(config.Retry.MaxDelayMs.ValueInt64()) * time.Millisecond
	}
	resp.Diagnostics.Append(checkTLS(opts.Insecure, caCert, clientCert, clientKey)...)
	if resp.Diagnostics.HasError() {
		return
	}

	// The settings in effect, defaults filled in, rather than the zero
	// values that stand for "default" in ClientOptions.
	eff := opts.WithDefaults()
	tflog.Debug(ctx, "configured zonegit provider", map[string]any{
		"primary_url":     eff.PrimaryURL,
		"token_set":       eff.Token != "",
		"headers":         len(eff.Headers),
		"token_from":      sourceIf(eff.Token, token.from),
		"secondary_token": sourceIf(secondaryToken.value, secondaryToken.from),
		"custom_ca":       eff.CACertPEM != "",
		"ca_from":         sourceIf(eff.CACertPEM, caCert.from),
		"client_cert":     eff.ClientCertPEM != "",
		"client_key_from": sourceIf(eff.ClientKeyPEM, clientKey.from),
		"insecure":        eff.Insecure,
		"request_timeout": eff.RequestTimeout.String(),
		"concurrency":     eff.Concurrency,
		"retry_attempts":  eff.RetryAttempts,
		"retry_min_delay": eff.RetryMinDelay.String(),
		"retry_max_delay": eff.RetryMaxDelay.String(),
		"user_agent":      eff.UserAgent,
	})
	data := &resources.ProviderData{
		Client:               opts,
		Version:              p.version,
		SecondaryToken:       secondaryToken.value,
		SecondaryTokenFrom:   secondaryToken.from,
		PlanReadsPrimaryRefs: p.opts.PlanReadsPrimaryRefs,
	}
	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *ZonegitProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		resources.NewReplicaResource,
		resources.NewSecondaryResource,
	}
}

func (p *ZonegitProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		resources.NewRefsDataSource,
		resources.NewRecordsDataSource,
	}
}

// sourceIf is where a setting came from, for the log, or "" when it is not
// set. Sources are attribute names, variable names and file paths, never values.
func sourceIf(value, from string) string {
	if value == "" {
		return ""
	}
	return from
}

// attrPath turns "a.b" into the path of attribute b in block a.
func attrPath(name string) path.Path {
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			return path.Root(name[:i]).AtName(name[i+1:])
		}
	}
	return path.Root(name)
}

// checkTLS parses the PEM material now, so a bad certificate is an error on
// the attribute that holds it, naming where it came from, rather than a
// failure at the first request. It also checks what the schema cannot see
// because a value may come from the environment: a client certificate needs
// its key and the other way round, and insecure leaves no CA to trust.
func checkTLS(insecure bool, ca, cert, key setting) (diags diag.Diagnostics) {
	if ca.value != "" {
		if insecure {
			diags.AddAttributeError(path.Root("insecure"), "Conflicting TLS settings", fmt.Sprintf(
				"insecure = true skips verifying the primary's certificate, but a CA certificate to verify it with "+
					"is set in %s. Remove one of them.", ca.from))
		}
		if ok := x509.NewCertPool().AppendCertsFromPEM([]byte(ca.value)); !ok {
			diags.AddAttributeError(path.Root("ca_cert_pem"), "Invalid CA certificate", fmt.Sprintf(
				"%s contains no PEM-encoded certificate. Provide one or more \"-----BEGIN CERTIFICATE-----\" blocks.", ca.from))
		}
	}
	switch {
	case cert.value != "" && key.value == "":
		diags.AddAttributeError(path.Root("client_key_pem"), "Missing client key", fmt.Sprintf(
			"A client certificate is set in %s, but no key for it. Set client_key_pem, or %s.",
			cert.from, envNames(EnvClientKeyPEM, true)))
	case cert.value == "" && key.value != "":
		diags.AddAttributeError(path.Root("client_cert_pem"), "Missing client certificate", fmt.Sprintf(
			"A client key is set in %s, but no certificate for it. Set client_cert_pem, or %s.",
			key.from, envNames(EnvClientCertPEM, true)))
	case cert.value != "":
		if _, err := tls.X509KeyPair([]byte(cert.value), []byte(key.value)); err != nil {
			diags.AddAttributeError(path.Root("client_cert_pem"), "Invalid client certificate", fmt.Sprintf(
				"The client certificate (%s) and key (%s) do not form a usable key pair: %v. Provide the "+
					"PEM-encoded certificate and its matching private key.", cert.from, key.from, err))
		}
	}
	return diags
}
