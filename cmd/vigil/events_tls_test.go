package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter"
)

func TestEventsOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		Subject: pkix.Name{CommonName: "vigil test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{
		Subject: pkix.Name{CommonName: "otelcol-vigil"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "operator"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, caKey)

	// A free port, for the exporter's configuration.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	exp := startStream(t, "", func(c *eventstreamexporter.Config) {
		tcp := c.TCP.GetOrInsertDefault()
		tcp.Endpoint = addr
		tcp.TLS.CertFile = filepath.Join(dir, "server.crt")
		tcp.TLS.KeyFile = filepath.Join(dir, "server.key")
		tcp.TLS.ClientCAFile = filepath.Join(dir, "ca.crt")
	})
	out := &syncBuffer{}
	startCLI(t, out, "--address", addr, "--color", "never",
		"--ca-file", filepath.Join(dir, "ca.crt"),
		"--cert-file", filepath.Join(dir, "client.crt"),
		"--key-file", filepath.Join(dir, "client.key"))
	require.NoError(t, exp.ConsumeLogs(t.Context(), execs("xwing", []string{"curl", "https://ebpf.io"})))
	assert.Equal(t, "🚀 process default/xwing /usr/bin/curl https://ebpf.io", lines(t, out, 2)[0])
}

// writeCert issues tmpl (self-signed without parent) and writes
// <name>.crt and <name>.key into dir.
func writeCert(t *testing.T, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return cert, key
}
