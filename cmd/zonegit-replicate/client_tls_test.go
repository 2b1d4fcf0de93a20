package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/internal/testpki"
)

// TestClientCertificateFlags: pull and refs reach a primary behind a
// private CA that requires client certificates (serve --tls-client-ca)
// with --ca-cert/--client-cert/--client-key, and fail naming the primary
// without the client certificate.
func TestClientCertificateFlags(t *testing.T) {
	m := startMTLSServe(t)
	url, c0, caFile, serveErr := m.url, m.tip, m.caFile, m.stderr
	certFile, keyFile := m.clientCertFile, m.keyFile
	withCert := []string{"--primary", url, "--ca-cert", caFile, "--client-cert", certFile, "--client-key", keyFile}

	code, out, errs := runCLI(t, append([]string{"refs"}, withCert...)...)
	if code != exitOK || !strings.Contains(out, c0.String()) {
		t.Fatalf("refs with a client certificate: exit %d\n%s\n%s\nserve: %s", code, out, errs, serveErr.String())
	}
	replica := filepath.Join(t.TempDir(), "replica")
	code, out, errs = runCLI(t, append([]string{"pull", "--repo", replica}, withCert...)...)
	if code != exitOK || !strings.Contains(out, "branch example.com./main: (none) -> "+c0.String()[:12]) {
		t.Fatalf("pull with a client certificate: exit %d\n%s\n%s\nserve: %s", code, out, errs, serveErr.String())
	}

	// The CA alone gets past server verification but not the primary's
	// demand for a client certificate.
	for _, cmd := range [][]string{
		{"refs", "--primary", url, "--ca-cert", caFile},
		{"pull", "--primary", url, "--ca-cert", caFile, "--repo", filepath.Join(t.TempDir(), "r")},
	} {
		code, _, errs := runCLI(t, cmd...)
		t.Logf("%s refused: %s", cmd[0], errs)
		if code != exitFailed || !strings.Contains(errs, url) {
			t.Errorf("%s without a client certificate: exit %d, stderr %q; want 1 naming %s", cmd[0], code, errs, url)
		}
	}
}

func TestClientTLSFlagsUsage(t *testing.T) {
	pki := testpki.New(t)
	clientCert, clientKey := pki.ClientCert(t, "secondary")
	_, otherKey := testpki.New(t).ClientCert(t, "secondary")
	fdir := t.TempDir()
	caFile := writeTestFile(t, fdir, "ca.pem", pki.CAPEM)
	certFile := writeTestFile(t, fdir, "client.pem", clientCert)
	keyFile := writeTestFile(t, fdir, "client-key.pem", clientKey)
	notPEM := writeTestFile(t, fdir, "not-pem.pem", []byte("this is not PEM\n"))
	missing := filepath.Join(fdir, "absent.pem")
	// Nothing here is reachable: every case must fail before any request.
	const primary = "https://127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--client-cert", certFile}, "--client-cert needs --client-key"},
		{[]string{"--client-key", keyFile}, "--client-key needs --client-cert"},
		{[]string{"--insecure", "--ca-cert", caFile}, "--insecure conflicts with --ca-cert"},
		{[]string{"--ca-cert", missing}, "absent.pem"},
		{[]string{"--ca-cert", notPEM}, "not-pem.pem"},
		{[]string{"--client-cert", missing, "--client-key", keyFile}, "absent.pem"},
		{[]string{"--client-cert", certFile, "--client-key", missing}, "absent.pem"},
		// A key that does not match the certificate names both files.
		{[]string{"--client-cert", certFile, "--client-key", writeTestFile(t, fdir, "other-key.pem", otherKey)}, "other-key.pem"},
	} {
		for _, cmd := range [][]string{
			{"refs", "--primary", primary},
			{"pull", "--primary", primary, "--repo", filepath.Join(t.TempDir(), "r")},
		} {
			args := append(append([]string{}, cmd...), tc.args...)
			code, _, errs := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(errs, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 and %q", args, code, errs, tc.want)
			}
		}
	}
}
