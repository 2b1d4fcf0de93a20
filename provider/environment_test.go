package provider_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/zonegit/terraform-provider-zonegit/internal/testpki"
)

// envSecrets are the variables these tests set; each step starts from
// all of them unset (empty counts as unset).
var envSecrets = []string{
	"ZONEGIT_PRIMARY_URL",
	"ZONEGIT_TOKEN", "ZONEGIT_TOKEN_FILE",
	"ZONEGIT_CA_CERT_PEM", "ZONEGIT_CA_CERT_PEM_FILE",
	"ZONEGIT_CLIENT_CERT_PEM", "ZONEGIT_CLIENT_CERT_PEM_FILE",
	"ZONEGIT_CLIENT_KEY_PEM", "ZONEGIT_CLIENT_KEY_PEM_FILE",
}

// setEnv sets exactly the given variables among envSecrets for the rest of
// the test.
func setEnv(t *testing.T, vars map[string]string) {
	for _, name := range envSecrets {
		t.Setenv(name, vars[name])
	}
}

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAccProvider_environment (issue 12.3): a pipeline can hand every
// secret over in the environment, as values or as files: an mTLS primary
// with a private CA and a token, configured by nothing but environment
// variables. A missing piece fails (so the variables are what made it
// work); bad or conflicting variables are errors naming them.
func TestAccProvider_environment(t *testing.T) {
	pki := testpki.New(t)
	p := newTestPrimary(t, primaryOptions{PKI: pki, Token: "env-t0ken"})
	certPEM, keyPEM := pki.ClientCert(t, "pipeline")
	files := t.TempDir()
	caFile := writeFile(t, files, "ca.pem", string(pki.CAPEM))
	certFile := writeFile(t, files, "client.pem", string(certPEM))
	keyFile := writeFile(t, files, "client-key.pem", string(keyPEM))
	// A trailing newline, as editors and `echo` leave, is not part of the token.
	tokenFile := writeFile(t, files, "token", "env-t0ken\n")

	const noRetry = "retry {\n    attempts = 0\n  }"
	config := func(providerBody string) string {
		return "provider \"zonegit\" {\n  " + providerBody + "\n}\n\ndata \"zonegit_refs\" \"test\" {}\n"
	}
	tips := statecheck.ExpectKnownValue("data.zonegit_refs.test", tfjsonpath.New("tips"),
		knownvalue.MapExact(map[string]knownvalue.Check{"example.com./main": knownvalue.StringExact(p.Commit)}))
	all := map[string]string{
		"ZONEGIT_PRIMARY_URL":     p.URL,
		"ZONEGIT_TOKEN":           "env-t0ken",
		"ZONEGIT_CA_CERT_PEM":     string(pki.CAPEM),
		"ZONEGIT_CLIENT_CERT_PEM": string(certPEM),
		"ZONEGIT_CLIENT_KEY_PEM":  string(keyPEM),
	}
	without := func(m map[string]string, drop ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for _, d := range drop {
			delete(out, d)
		}
		return out
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := without(m)
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	fromFiles := map[string]string{
		"ZONEGIT_PRIMARY_URL":          p.URL,
		"ZONEGIT_TOKEN_FILE":           tokenFile,
		"ZONEGIT_CA_CERT_PEM_FILE":     caFile,
		"ZONEGIT_CLIENT_CERT_PEM_FILE": certFile,
		"ZONEGIT_CLIENT_KEY_PEM_FILE":  keyFile,
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			// Without the CA the primary's certificate is not trusted.
			{
				PreConfig:   func() { setEnv(t, without(all, "ZONEGIT_CA_CERT_PEM")) },
				Config:      config(noRetry),
				ExpectError: errorLike(p.URL, "certificate signed by unknown authority"),
			},
			// Without the client certificate the primary refuses the
			// handshake.
			{
				PreConfig:   func() { setEnv(t, without(all, "ZONEGIT_CLIENT_CERT_PEM", "ZONEGIT_CLIENT_KEY_PEM")) },
				Config:      config(noRetry),
				ExpectError: errorLike(p.URL, "certificate"),
			},
			// Without the token the primary answers 401.
			{
				PreConfig:   func() { setEnv(t, without(all, "ZONEGIT_TOKEN")) },
				Config:      config(noRetry),
				ExpectError: errorLike(p.URL, "401"),
			},
			// Everything as values.
			{
				PreConfig:         func() { setEnv(t, all) },
				Config:            config(noRetry),
				ConfigStateChecks: []statecheck.StateCheck{tips},
			},
			// Everything as files.
			{
				PreConfig:         func() { setEnv(t, fromFiles) },
				Config:            config(noRetry),
				ConfigStateChecks: []statecheck.StateCheck{tips},
			},
			// The certificate in the configuration, its key from a file:
			// the usual split of public and secret material.
			{
				PreConfig: func() {
					setEnv(t, map[string]string{
						"ZONEGIT_PRIMARY_URL": p.URL, "ZONEGIT_TOKEN": "env-t0ken",
						"ZONEGIT_CA_CERT_PEM": string(pki.CAPEM), "ZONEGIT_CLIENT_KEY_PEM_FILE": keyFile,
					})
				},
				Config:            config(noRetry + "\n  client_cert_pem = " + hcl(string(certPEM))),
				ConfigStateChecks: []statecheck.StateCheck{tips},
			},
			// The configuration wins over the environment.
			{
				PreConfig:   func() { setEnv(t, all) },
				Config:      config(noRetry + "\n  token = \"config-token\""),
				ExpectError: errorLike(p.URL, "401"),
			},
			// Errors name the variable.
			{
				PreConfig:   func() { setEnv(t, with(all, "ZONEGIT_CA_CERT_PEM", "not a certificate")) },
				Config:      config(noRetry),
				ExpectError: errorLike("Invalid CA certificate", "ZONEGIT_CA_CERT_PEM contains no PEM-encoded certificate"),
			},
			{
				PreConfig:   func() { setEnv(t, with(all, "ZONEGIT_TOKEN_FILE", tokenFile)) },
				Config:      config(noRetry),
				ExpectError: errorLike("Conflicting environment variables", "Both ZONEGIT_TOKEN and ZONEGIT_TOKEN_FILE are set"),
			},
			{
				PreConfig: func() {
					setEnv(t, with(without(all, "ZONEGIT_CLIENT_KEY_PEM"), "ZONEGIT_CLIENT_KEY_PEM_FILE", filepath.Join(files, "gone.pem")))
				},
				Config:      config(noRetry),
				ExpectError: errorLike("Cannot read ZONEGIT_CLIENT_KEY_PEM_FILE", "gone.pem", "no such file"),
			},
			{
				PreConfig:   func() { setEnv(t, without(all, "ZONEGIT_CLIENT_KEY_PEM")) },
				Config:      config(noRetry),
				ExpectError: errorLike("Missing client key", "ZONEGIT_CLIENT_CERT_PEM", "ZONEGIT_CLIENT_KEY_PEM_FILE"),
			},
			{
				PreConfig:   func() { setEnv(t, all) },
				Config:      config(noRetry + "\n  insecure = true"),
				ExpectError: errorLike("Conflicting TLS settings", "ZONEGIT_CA_CERT_PEM"),
			},
			{
				PreConfig: func() {
					setEnv(t, with(without(all, "ZONEGIT_TOKEN"), "ZONEGIT_TOKEN_FILE", writeFile(t, files, "empty", " \n")))
				},
				Config:      config(noRetry),
				ExpectError: errorLike("Empty ZONEGIT_TOKEN_FILE", "is empty"),
			},
			// Back to a working environment, which the final destroy needs.
			{
				PreConfig:         func() { setEnv(t, all) },
				Config:            config(noRetry),
				ConfigStateChecks: []statecheck.StateCheck{tips},
			},
		},
	})
}

// hcl quotes s as an HCL string (heredoc for multi-line PEM).
func hcl(s string) string {
	if strings.Contains(s, "\n") {
		return "<<-EOT\n" + strings.TrimSuffix(s, "\n") + "\nEOT"
	}
	return `"` + s + `"`
}
