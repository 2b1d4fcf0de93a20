// Package testpki makes throw-away certificates for tests only: a private
// CA and server and client certificates it signs, as PEM. Nothing here is
// fit for anything but a test.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// PKI is a throw-away certificate authority.
type PKI struct {
	// CAPEM is the CA certificate, PEM-encoded.
	CAPEM []byte
	// Pool holds the CA certificate, for tls.Config RootCAs or ClientCAs.
	Pool *x509.CertPool

	ca  *x509.Certificate
	key *ecdsa.PrivateKey

	mu     sync.Mutex
	serial int64
}

// New makes a CA valid from an hour ago for a day.
func New(t testing.TB) *PKI {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "zonegit test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &PKI{
		CAPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Pool:   pool,
		ca:     ca,
		key:    key,
		serial: 1,
	}
}

// ServerCert issues a server certificate for the IP addresses (127.0.0.1
// if none are given) and returns it and its key, PEM-encoded.
func (p *PKI) ServerCert(t testing.TB, ips ...net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	if len(ips) == 0 {
		ips = []net.IP{net.ParseIP("127.0.0.1")}
	}
	return p.issue(t, ips[0].String(), x509.ExtKeyUsageServerAuth, ips)
}

// ClientCert issues a client certificate with common name cn and returns
// it and its key, PEM-encoded.
func (p *PKI) ClientCert(t testing.TB, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	return p.issue(t, cn, x509.ExtKeyUsageClientAuth, nil)
}

func (p *PKI) issue(t testing.TB, cn string, usage x509.ExtKeyUsage, ips []net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	p.mu.Lock()
	p.serial++
	serial := p.serial
	p.mu.Unlock()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  ips,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
