package resources_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/zonegit/terraform-provider-zonegit/provider"
	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// testAccProtoV6ProviderFactories runs the provider in the test process, so
// tests can share state (primaries, counters) with it.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"zonegit": providerserver.NewProtocol6WithError(provider.New("test")()),
}

// testPrimary is a zonegit primary for one test: a Badger repository with
// one writable handle kept open, served by replicate.Server on loopback.
type testPrimary struct {
	t      *testing.T
	repo   *repo.Repo
	server *httptest.Server
	URL    string

	mu     sync.Mutex
	serial int

	// refsRequests counts GET /v0/refs requests that reached the handler,
	// failed ones included.
	refsRequests atomic.Int64
	// failRefs makes the next n GET /v0/refs answer 503.
	failRefs atomic.Int64
	// failed counts the 503s served because of failRefs.
	failed atomic.Int64
	// failObjects makes every object request answer 500 (a primary that
	// lists refs but cannot serve them).
	failObjects atomic.Bool

	// requests counts every request that reached the primary, by replica
	// prefix and protocol path (see replicaURL).
	reqMu    sync.Mutex
	requests map[requestKey]int
}

// requestKey is where a request went: the replica prefix it came through
// ("" for the bare URL) and the protocol path below it.
type requestKey struct {
	Replica string
	Path    string
}

// replicaPrefix is the path prefix under which the test primary also serves
// the protocol, so that each replica can be given its own primary URL and
// its requests counted apart: <URL>/r/<name>/v0/refs is <URL>/v0/refs.
const replicaPrefix = "/r/"

// replicaURL is the primary URL that replica name uses to be counted apart.
func (p *testPrimary) replicaURL(name string) string {
	return p.URL + replicaPrefix + name
}

// resetRequests forgets the requests counted so far.
func (p *testPrimary) resetRequests() {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	p.requests = map[requestKey]int{}
}

// requestCounts returns the requests counted since the last reset.
func (p *testPrimary) requestCounts() map[requestKey]int {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	return maps.Clone(p.requests)
}

// isObjectPath reports whether path is object traffic: GET /v0/objects/<hash>
// or the walk, batch and pack endpoints below it.
func isObjectPath(path string) bool {
	return strings.HasPrefix(path, replicate.BasePath+"/objects/")
}

// primaryOptions configure newTestPrimary.
type primaryOptions struct {
	Token  string
	V0Only bool
	// TLS serves https with httptest's certificate; ClientCAs (with TLS)
	// also requires a client certificate signed by one of them.
	TLS       bool
	ClientCAs *x509.CertPool
	// Handler, when set, replaces the protocol handler (a broken primary).
	Handler http.Handler
}

func newTestPrimary(t *testing.T, opts primaryOptions) *testPrimary {
	t.Helper()
	r, err := repo.Open(filepath.Join(t.TempDir(), "primary"), repo.Options{})
	if err != nil {
		t.Fatalf("open primary: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	p := &testPrimary{t: t, repo: r, requests: map[requestKey]int{}}

	srv := &replicate.Server{
		SnapshotFn: func() (*repo.Repo, error) { return r, nil },
		V0Only:     opts.V0Only,
		Token:      opts.Token,
	}
	mux := http.NewServeMux()
	srv.RegisterHandlers(mux)
	var h http.Handler = mux
	if opts.Handler != nil {
		h = opts.Handler
	}
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		replica := ""
		if rest, ok := strings.CutPrefix(req.URL.Path, replicaPrefix); ok {
			name, sub, _ := strings.Cut(rest, "/")
			replica = name
			req.URL.Path, req.URL.RawPath = "/"+sub, ""
		}
		p.reqMu.Lock()
		p.requests[requestKey{replica, req.URL.Path}]++
		p.reqMu.Unlock()
		if p.failObjects.Load() && isObjectPath(req.URL.Path) {
			http.Error(w, "disk on fire", http.StatusInternalServerError)
			return
		}
		if req.URL.Path == replicate.BasePath+"/refs" {
			p.refsRequests.Add(1)
			if p.failRefs.Load() > 0 && p.failRefs.Add(-1) >= 0 {
				p.failed.Add(1)
				http.Error(w, "primary warming up", http.StatusServiceUnavailable)
				return
			}
		}
		h.ServeHTTP(w, req)
	})

	if opts.TLS {
		p.server = httptest.NewUnstartedServer(wrapped)
		if opts.ClientCAs != nil {
			p.server.TLS = &tls.Config{ClientCAs: opts.ClientCAs, ClientAuth: tls.RequireAndVerifyClientCert}
		}
		p.server.StartTLS()
	} else {
		p.server = httptest.NewServer(wrapped)
	}
	t.Cleanup(p.server.Close)
	p.URL = p.server.URL
	return p
}

// commit imports a new version of zone on branch and returns its commit
// hash. Every call produces different content.
func (p *testPrimary) commit(zone, branch string) string {
	p.t.Helper()
	p.mu.Lock()
	p.serial++
	serial := p.serial
	p.mu.Unlock()
	res, err := p.repo.Import(context.Background(), repo.ImportOptions{
		Zone:       zone,
		Branch:     branch,
		Source:     strings.NewReader(zoneFile(zone, serial)),
		SourceName: fmt.Sprintf("%s%s.zone", zone, branch),
		Message:    fmt.Sprintf("test commit %d", serial),
	})
	if err != nil {
		p.t.Fatalf("import %s on %s: %v", zone, branch, err)
	}
	return res.Commit.String()
}

// deleteBranch removes a branch from the primary.
func (p *testPrimary) deleteBranch(zone, branch string) {
	p.t.Helper()
	old, err := p.repo.Branch(zone, branch)
	if err != nil {
		p.t.Fatalf("read %s/%s: %v", zone, branch, err)
	}
	if err := p.repo.UpdateBranch(zone, branch, old, repo.ZeroHash, nil); err != nil {
		p.t.Fatalf("delete %s/%s: %v", zone, branch, err)
	}
}

// tag points a tag of zone at hash.
func (p *testPrimary) tag(zone, name, hash string) {
	p.t.Helper()
	if err := p.repo.UpdateTag(zone, name, repo.ZeroHash, repo.MustParseHash(hash), nil); err != nil {
		p.t.Fatalf("tag %s/%s: %v", zone, name, err)
	}
}

// zoneFile is a small valid zone whose content depends on serial.
func zoneFile(zone string, serial int) string {
	return fmt.Sprintf(`$ORIGIN %[1]s
$TTL 300
@	IN SOA ns1.%[1]s hostmaster.%[1]s %[2]d 7200 3600 1209600 300
@	IN NS ns1.%[1]s
ns1	IN A 192.0.2.1
www	IN A 192.0.2.%[3]d
txt	IN TXT "version %[2]d"
`, zone, serial, serial%250+2)
}

// localRefs reads the branches of the replica at dir, as state shows them.
func localRefs(t *testing.T, dir string) map[string]string {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open replica %s: %v", dir, err)
	}
	defer r.Close()
	refs, err := r.Branches("")
	if err != nil {
		t.Fatalf("list replica branches: %v", err)
	}
	out := map[string]string{}
	for _, ref := range refs {
		out[ref.Zone+"/"+ref.Name] = ref.Hash.String()
	}
	return out
}

// funcPlanCheck runs fn as a plan check: after the plan is computed and
// before it is applied.
type funcPlanCheck func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse)

func (f funcPlanCheck) CheckPlan(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	f(ctx, req, resp)
}

// dirExists reports whether path exists.
func dirExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkDirGone is a CheckDestroy that fails when dir still exists; what
// says what should have removed it (or never made it), e.g. "destroy with
// destroy_data = true left".
func checkDirGone(dir, what string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if dirExists(dir) {
			return fmt.Errorf("%s %s", what, dir)
		}
		return nil
	}
}

// hcl quotes s as an HCL string (heredoc for multi-line PEM).
func hcl(s string) string {
	if strings.Contains(s, "\n") {
		return "<<-EOT\n" + s + "\nEOT"
	}
	return fmt.Sprintf("%q", s)
}

// serverCAPEM is the PEM of the certificate a TLS test primary presents,
// which is self-signed and so its own CA.
func (p *testPrimary) serverCAPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.server.Certificate().Raw}))
}

// errorLike matches an error that contains each part in order. Terraform
// wraps diagnostics, so the spaces inside a part match any whitespace.
func errorLike(parts ...string) *regexp.Regexp {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(quoted, ".*"))
}

// deadURL returns an http URL on loopback where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}
