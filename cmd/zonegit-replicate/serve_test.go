package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/internal/testpki"
	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// syncBuffer is a bytes.Buffer safe for the serve goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingLine = regexp.MustCompile(`serving .* on (https?://[^\s]+)`)

// startServe runs `serve` in-process and returns its base URL, a stop
// function that cancels it and returns its exit code, and its stderr.
func startServe(t *testing.T, args ...string) (string, func() int, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- dispatch(ctx, append([]string{"serve"}, args...), io.Discard, stderr) }()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop after its context was cancelled")
			}
		})
		return code
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(stderr.String()); m != nil {
			t.Cleanup(func() { stop() })
			return m[1], stop, stderr
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve printed no address: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mainTip(t *testing.T, c *http.Client, url string, hdr ...string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/v0/refs", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET refs: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	var rr replicate.RefsResponse
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		t.Fatalf("refs: %v", err)
	}
	for _, b := range rr.Branches {
		if b.Zone == "example.com." && b.Name == "main" {
			return b.Hash, resp.StatusCode
		}
	}
	return "", resp.StatusCode
}

func writeCommit(t *testing.T, dir string, fn func(r *repo.Repo) (repo.Hash, error)) repo.Hash {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := fn(r)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestServeSeesNewCommits: serve reads the directory read-only while
// another handle writes a commit; once the writer closes, the new tip is
// served without a restart.
func TestServeSeesNewCommits(t *testing.T) {
	dir := t.TempDir()
	c0 := writeCommit(t, dir, func(r *repo.Repo) (repo.Hash, error) {
		return repotest.SyntheticZone(r, "example.com.", "main", 20)
	})
	url, stop, stderr := startServe(t, "--repo", dir, "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("printed address %q is not the bound one", url)
	}
	c := &http.Client{}
	if tip, code := mainTip(t, c, url); tip != c0.String() {
		t.Fatalf("main = %q (status %d), want %s", tip, code, c0)
	}

	// A writer opens the directory (serve holds no lock, so this works)
	// and commits; while it is open, serve keeps answering.
	w, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatalf("writable open while serving: %v", err)
	}
	c1, err := repotest.SetA(w, "example.com.", "main", []string{"h3"}, 60, [4]byte{192, 0, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if tip, code := mainTip(t, c, url); code != http.StatusOK || (tip != c0.String() && tip != c1.String()) {
		t.Fatalf("while a writer is open: main %q, status %d", tip, code)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// The snapshotter re-opens within about a second; the deadline is only
	// a guard against hanging.
	deadline := time.Now().Add(15 * time.Second)
	for {
		tip, _ := mainTip(t, c, url)
		if tip == c1.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new tip %s never served (still %s); stderr: %s", c1.Short(), tip, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The new objects are served too.
	resp, err := c.Get(url + "/v0/objects/" + c1.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(wire.ObjectKindHeader) != "commit" {
		t.Errorf("GET new commit: %d %q", resp.StatusCode, resp.Header.Get(wire.ObjectKindHeader))
	}
	if code := stop(); code != exitOK {
		t.Errorf("exit code %d after shutdown; stderr: %s", code, stderr.String())
	}
	// The shutdown line counts what was served: the refs requests above
	// and the one object.
	m := regexp.MustCompile(`served (\d+) requests \(\d+ client errors, \d+ server errors, \d+ refused as busy\): 1 objects, (\d+) payload bytes`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no served line at shutdown: %s", stderr.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 4 {
		t.Errorf("served %s requests, want at least the 3 refs and 1 object GETs", m[1])
	}
	if m[2] == "0" {
		t.Errorf("served 0 payload bytes for a commit")
	}
}

func TestServeTLSAndToken(t *testing.T) {
	dir := t.TempDir()
	c0 := writeCommit(t, dir, func(r *repo.Repo) (repo.Hash, error) {
		return repotest.SyntheticZone(r, "example.com.", "main", 5)
	})
	pki := testpki.New(t)
	serverCert, serverKey := pki.ServerCert(t)
	fdir := t.TempDir()
	certFile := writeTestFile(t, fdir, "cert.pem", serverCert)
	keyFile := writeTestFile(t, fdir, "key.pem", serverKey)
	pool := pki.Pool
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, _, stderr := startServe(t, "--repo", dir, "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--token-file", tokenFile, "--v0-only")
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("address %q is not https", url)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, code := mainTip(t, c, url); code != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", code)
	}
	if tip, code := mainTip(t, c, url, "Authorization", "Bearer t0ken"); tip != c0.String() {
		t.Errorf("with token: main %q status %d", tip, code)
	}
	if strings.Contains(stderr.String(), "t0ken") {
		t.Error("the token appears in the log")
	}
}

func TestServeUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--repo", t.TempDir(), "--tls-cert", "x.pem"},
		{"--repo", t.TempDir(), "extra"},
	} {
		if code, _, errOut := runCLI(t, append([]string{"serve"}, args...)...); code != exitUsage {
			t.Errorf("serve %v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
	missing := filepath.Join(t.TempDir(), "absent")
	if code, _, errOut := runCLI(t, "serve", "--repo", missing, "--listen", "127.0.0.1:0"); code != exitFailed || !strings.Contains(errOut, "absent") {
		t.Errorf("missing repo: exit %d, stderr %q", code, errOut)
	}
}

func writeTestFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeClientCertificates: with --tls-client-ca, a replicate client
// presenting a certificate from the bundle pulls; one without a
// certificate is refused in the TLS handshake, promptly and with a TLS
// error rather than a hang or an HTTP status.
// mtlsPrimary is `serve --tls-client-ca` over a 5-record zone, with the
// material a client needs to reach it.
type mtlsPrimary struct {
	url                     string
	tip                     repo.Hash // example.com./main
	pki                     *testpki.PKI
	caFile                  string // the CA bundle, also trusted for the server
	clientCert, clientKey   []byte // signed by the CA
	clientCertFile, keyFile string
	stderr                  *syncBuffer
}

func startMTLSServe(t *testing.T) *mtlsPrimary {
	t.Helper()
	dir := t.TempDir()
	m := &mtlsPrimary{pki: testpki.New(t)}
	m.tip = writeCommit(t, dir, func(r *repo.Repo) (repo.Hash, error) {
		return repotest.SyntheticZone(r, "example.com.", "main", 5)
	})
	serverCert, serverKey := m.pki.ServerCert(t)
	m.clientCert, m.clientKey = m.pki.ClientCert(t, "secondary")
	fdir := t.TempDir()
	m.caFile = writeTestFile(t, fdir, "ca.pem", m.pki.CAPEM)
	m.clientCertFile = writeTestFile(t, fdir, "client.pem", m.clientCert)
	m.keyFile = writeTestFile(t, fdir, "client-key.pem", m.clientKey)
	m.url, _, m.stderr = startServe(t, "--repo", dir, "--listen", "127.0.0.1:0",
		"--tls-cert", writeTestFile(t, fdir, "server.pem", serverCert),
		"--tls-key", writeTestFile(t, fdir, "server-key.pem", serverKey),
		"--tls-client-ca", m.caFile)
	return m
}

func TestServeClientCertificates(t *testing.T) {
	m := startMTLSServe(t)
	url, c0, pki, stderr, clientCert, clientKey := m.url, m.tip, m.pki, m.stderr, m.clientCert, m.clientKey
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("address %q is not https", url)
	}

	pull := func(opts replicate.ClientOptions) (repo.Hash, error) {
		t.Helper()
		local, err := repo.Open(t.TempDir(), repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer local.Close()
		opts.PrimaryURL = url
		opts.CACertPEM = string(pki.CAPEM)
		// One try, bounded: a refused handshake must surface as an error,
		// and a hang would hit the timeout instead of passing.
		opts.RetryAttempts = -1
		opts.RequestTimeout = 10 * time.Second
		c, err := replicate.NewClientWithOptions(local, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.PullWith(ctx, replicate.PullOptions{}); err != nil {
			return repo.Hash{}, err
		}
		return local.Branch("example.com.", "main")
	}

	tip, err := pull(replicate.ClientOptions{ClientCertPEM: string(clientCert), ClientKeyPEM: string(clientKey)})
	if err != nil {
		t.Fatalf("pull with a client certificate: %v; stderr: %s", err, stderr.String())
	}
	if tip != c0 {
		t.Fatalf("pulled main = %s, want %s", tip, c0)
	}

	start := time.Now()
	_, err = pull(replicate.ClientOptions{})
	if err == nil {
		t.Fatal("pull without a client certificate succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %v; it should fail in the handshake, not time out", d)
	}
	// TLS 1.3 finishes the client's side of the handshake before the
	// server checks its certificate, so the refusal reaches the client
	// either as the server's "certificate required" alert or, when the
	// server closed first, as a reset or broken pipe on the request write,
	// or (HTTP/2, on a loaded machine) as the connection closing before its
	// preface was answered. Any of these is a refusal; a timeout is not.
	msg := err.Error()
	t.Logf("refused: %v", err)
	refused := strings.Contains(msg, "tls:") || strings.Contains(msg, "connection reset by peer") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "http2: client conn could not be established")
	if !refused || strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline") {
		t.Errorf("pull without a client certificate: %v; want a refusal in the TLS handshake", err)
	}
}

// TestServeClientCAUsage: --tls-client-ca without a server certificate is
// a usage error naming the flag; a file without a usable certificate is
// a failure naming the file.
func TestServeClientCAUsage(t *testing.T) {
	pki := testpki.New(t)
	serverCert, serverKey := pki.ServerCert(t)
	_, clientKey := pki.ClientCert(t, "secondary")
	fdir := t.TempDir()
	caFile := writeTestFile(t, fdir, "ca.pem", pki.CAPEM)
	code, _, errOut := runCLI(t, "serve", "--repo", t.TempDir(), "--listen", "127.0.0.1:0", "--tls-client-ca", caFile)
	if code != exitUsage || !strings.Contains(errOut, "--tls-client-ca") {
		t.Errorf("--tls-client-ca without --tls-cert: exit %d, stderr %q", code, errOut)
	}

	dir := t.TempDir()
	writeCommit(t, dir, func(r *repo.Repo) (repo.Hash, error) {
		return repotest.SyntheticZone(r, "example.com.", "main", 1)
	})
	certFile := writeTestFile(t, fdir, "server.pem", serverCert)
	keyFile := writeTestFile(t, fdir, "server-key.pem", serverKey)
	bad := map[string][]byte{
		"not-pem.pem":  []byte("this is not PEM\n"),
		"only-key.pem": clientKey,
		"garbled.pem":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")}),
	}
	for name, data := range bad {
		f := writeTestFile(t, fdir, name, data)
		code, _, errOut := runCLI(t, "serve", "--repo", dir, "--listen", "127.0.0.1:0",
			"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", f)
		if code != exitFailed || !strings.Contains(errOut, name) {
			t.Errorf("client CA %s: exit %d, stderr %q", name, code, errOut)
		}
	}
	missing := filepath.Join(fdir, "absent.pem")
	code, _, errOut = runCLI(t, "serve", "--repo", dir, "--listen", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", missing)
	if code != exitFailed || !strings.Contains(errOut, "absent.pem") {
		t.Errorf("missing client CA: exit %d, stderr %q", code, errOut)
	}
}
