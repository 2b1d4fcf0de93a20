package provider

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Environment variables read when the matching attribute is not set.
const (
	EnvPrimaryURL    = "ZONEGIT_PRIMARY_URL"
	EnvToken         = "ZONEGIT_TOKEN"
	EnvCACertPEM     = "ZONEGIT_CA_CERT_PEM"
	EnvClientCertPEM = "ZONEGIT_CLIENT_CERT_PEM"
	EnvClientKeyPEM  = "ZONEGIT_CLIENT_KEY_PEM"
	// EnvSecondaryToken is the control token of secondary daemons
	// (zonegit_secondary), a secret apart from the primary's token.
	EnvSecondaryToken = "ZONEGIT_SECONDARY_TOKEN"
)

// FileSuffix turns a secret's environment variable into the one naming a
// file that holds the value: ZONEGIT_TOKEN_FILE=/run/secrets/zonegit-token.
// Pipelines and secret stores hand secrets over as files as often as as
// values (mounted secrets, CI "file" variables), and a multi-line PEM does
// not survive every way of passing an environment variable (docker's
// --env-file, for one), so each secret can come either way.
const FileSuffix = "_FILE"

// setting is the value of one attribute after the environment was
// consulted, and where it came from, for messages.
type setting struct {
	value string
	// from names the source: the attribute, the environment variable, or
	// the file and the variable naming it.
	from string
}

// resolveSetting returns the attribute's value if the configuration sets
// it; otherwise the environment variable env, or the contents of the file
// named by env+FileSuffix (both at once are an error). Empty variables count
// as unset. trim removes surrounding white space from a file's contents, as
// `zonegit-replicate --token-file` does for a token; a file holding nothing
// else is an error, since it was named to provide a value.
func resolveSetting(v types.String, attr, env string, fileEnv bool, trim bool) (setting, diag.Diagnostics) {
	var diags diag.Diagnostics
	if !v.IsNull() {
		return setting{value: v.ValueString(), from: attr}, diags
	}
	val := os.Getenv(env)
	if !fileEnv {
		return setting{value: val, from: env}, diags
	}
	fileVar := env + FileSuffix
	file := os.Getenv(fileVar)
	switch {
	case file == "":
		return setting{value: val, from: env}, diags
	case val != "":
		diags.AddAttributeError(path.Root(attr), "Conflicting environment variables", fmt.Sprintf(
			"Both %s and %s are set, so %s could come from either. Unset one of them (or set %s in the "+
				"provider configuration, which takes precedence over both).", env, fileVar, attr, attr))
		return setting{}, diags
	}
	b, err := os.ReadFile(file)
	if err != nil {
		diags.AddAttributeError(path.Root(attr), "Cannot read "+fileVar, fmt.Sprintf(
			"%s names the file holding %s, but reading it failed: %v. Point %s at a readable file, or unset it.",
			fileVar, attr, err, fileVar))
		return setting{}, diags
	}
	s := string(b)
	if trim {
		s = strings.TrimSpace(s)
	}
	if strings.TrimSpace(s) == "" {
		diags.AddAttributeError(path.Root(attr), "Empty "+fileVar, fmt.Sprintf(
			"%s names the file %s to provide %s, but the file is empty. Put the value in the file, or unset %s.",
			fileVar, file, attr, fileVar))
		return setting{}, diags
	}
	return setting{value: s, from: fmt.Sprintf("the file %s (from %s)", file, fileVar)}, diags
}

// envNames lists where an attribute may come from besides the
// configuration, for messages: "ZONEGIT_TOKEN or ZONEGIT_TOKEN_FILE".
func envNames(env string, fileEnv bool) string {
	if !fileEnv {
		return env
	}
	return env + " or " + env + FileSuffix
}
