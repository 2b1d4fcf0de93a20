package provider_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/internal/testpki"
	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// testPrimary is a real primary for the provider's tests: a Badger
// repository served by replicate.Server on loopback, optionally over mutual
// TLS, requiring a bearer token and an extra header.
type testPrimary struct {
	URL string
	// Commit is the tip of example.com./main.
	Commit string
	// refused counts requests refused for a missing or wrong header.
	refused atomic.Int64
	// served counts requests that passed the header check.
	served atomic.Int64
}

type primaryOptions struct {
	Token string
	// Header, when set ("Name: value"), must be sent with every request.
	Header string
	// PKI, when set, serves https with a certificate it issues for
	// 127.0.0.1 and requires a client certificate it signed.
	PKI *testpki.PKI
}

func newTestPrimary(t *testing.T, opts primaryOptions) *testPrimary {
	t.Helper()
	r, err := repo.Open(filepath.Join(t.TempDir(), "primary"), repo.Options{})
	if err != nil {
		t.Fatalf("open primary: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	res, err := r.Import(context.Background(), repo.ImportOptions{
		Zone:       "example.com.",
		Branch:     "main",
		SourceName: "example.com.zone",
		Source: strings.NewReader("$ORIGIN example.com.\n$TTL 300\n" +
			"@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"),
	})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	p := &testPrimary{Commit: res.Commit.String()}

	srv := &replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }, Token: opts.Token}
	mux := http.NewServeMux()
	srv.RegisterHandlers(mux)
	name, value, _ := strings.Cut(opts.Header, ":")
	value = strings.TrimSpace(value)
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if name != "" && req.Header.Get(name) != value {
			p.refused.Add(1)
			http.Error(w, "missing or wrong "+name, http.StatusForbidden)
			return
		}
		p.served.Add(1)
		mux.ServeHTTP(w, req)
	})

	s := httptest.NewUnstartedServer(h)
	if opts.PKI != nil {
		certPEM, keyPEM := opts.PKI.ServerCert(t)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		s.TLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    opts.PKI.Pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
		}
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	p.URL = s.URL
	return p
}
