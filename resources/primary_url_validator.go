package resources

import (
	"context"
	"fmt"
	"net/url"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

var _ validator.String = baseURLValidator{}

// PrimaryURLValidator checks that a value is an absolute http:// or https://
// URL with a host, the only kind of primary the replication client speaks to.
func PrimaryURLValidator() validator.String {
	return baseURLValidator{summary: "Invalid primary URL", check: CheckPrimaryURL}
}

// secondaryURLValidator checks a secondary daemon's URL by the same rules.
func secondaryURLValidator() validator.String {
	return baseURLValidator{summary: "Invalid secondary URL", check: checkSecondaryURL}
}

// baseURLValidator checks a base URL with check, reporting summary.
type baseURLValidator struct {
	summary string
	check   func(string) error
}

func (v baseURLValidator) Description(_ context.Context) string {
	return "value must be an http:// or https:// URL with a host"
}

func (v baseURLValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v baseURLValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, err.Error())
	}
}

// CheckPrimaryURL returns an error explaining why s is not a usable primary
// URL, or nil. It is also used for values from ZONEGIT_PRIMARY_URL, which no
// schema validator sees.
func CheckPrimaryURL(s string) error {
	return checkBaseURL(s, "primary", "https://primary.example:9354")
}

// checkSecondaryURL returns an error explaining why s is not a usable URL of
// a secondary daemon, or nil.
func checkSecondaryURL(s string) error {
	return checkBaseURL(s, "secondary daemon", "https://ns1.example:9355")
}

// checkBaseURL checks that s is the base URL of a server speaking HTTP: an
// absolute http:// or https:// URL with a host and no query or fragment.
func checkBaseURL(s, what, example string) error {
	want := "Use an http:// or https:// URL such as " + example + "."
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
		return fmt.Errorf("%q has a query or fragment; the %s URL is a base URL (scheme, host, port and optional path prefix). %s", s, what, want)
	}
	return nil
}
