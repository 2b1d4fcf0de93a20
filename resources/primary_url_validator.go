package resources

import (
	"context"
	"fmt"
	"net/url"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

var _ validator.String = primaryURLValidator{}

// PrimaryURLValidator checks that a value is an absolute http:// or https://
// URL with a host, the only kind of primary the replication client speaks to.
func PrimaryURLValidator() validator.String {
	return primaryURLValidator{}
}

type primaryURLValidator struct{}

func (v primaryURLValidator) Description(_ context.Context) string {
	return "value must be an http:// or https:// URL with a host"
}

func (v primaryURLValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v primaryURLValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := CheckPrimaryURL(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid primary URL", err.Error())
	}
}

// CheckPrimaryURL returns an error explaining why s is not a usable primary
// URL, or nil. It is also used for values from ZONEGIT_PRIMARY_URL, which no
// schema validator sees.
func CheckPrimaryURL(s string) error {
	const want = "Use an http:// or https:// URL such as https://primary.example:9354."
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL (%v). %s", s, err, want)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return fmt.Errorf("%q has no scheme. %s", s, want)
		}
		return fmt.Errorf("%q has scheme %q, which the replication protocol does not support. %s", s, u.Scheme, want)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host. %s", s, want)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q has a query or fragment; the primary URL is a base URL (scheme, host, port and optional path prefix). %s", s, want)
	}
	return nil
}
