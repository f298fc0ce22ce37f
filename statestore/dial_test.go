package statestore_test

import (
	"context"
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
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/statestore"
)

func TestDial_URLForms(t *testing.T) {
	cases := []struct {
		url  string
		want string // type of client, or an error substring
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client"},
		{"rediss://127.0.0.1:6380", "*redis.Client"},
		{"redis+sentinel://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380", "*redis.Client"},
		{"redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001", "*redis.ClusterClient"},
		{"redis+sentinel://127.0.0.1:26379", "master_name"},
		{"http://127.0.0.1", "scheme"},
		{"redis+mesh://x", "scheme"},
		{"redis://127.0.0.1:6379?no_such_param=1", "no_such_param"},
		{"::not a url", "redis url"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			c, err := statestore.Dial(tc.url)
			if strings.HasPrefix(tc.want, "*") {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := typeName(c); got != tc.want {
					t.Fatalf("client %s, want %s", got, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.Client:
		return "*redis.Client"
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	default:
		return "other"
	}
}

func TestDial_AuthFromTheURL(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--requirepass", "s3cret"))
	ctx := context.Background()
	good, err := statestore.Dial("redis://:s3cret@" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := good.Ping(ctx).Err(); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	bad, _ := statestore.Dial("redis://" + srv.Addr)
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("without the password: %v", err)
	}
}

func TestDial_TLS(t *testing.T) {
	cert, key := selfSigned(t)
	srv := redistest.Start(t, redistest.WithTLS(cert, key, cert))
	ctx := context.Background()
	c, err := statestore.Dial("rediss://" + srv.Addr + "?skip_verify=true")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := statestore.New(c, statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Report(ctx, "tls", statestore.DefaultPolicy(), "a", statestore.Batch{Fail: 5, TrailingFail: 5})
	if err != nil || r.State != statestore.StateOpen {
		t.Fatalf("scripts over TLS: %+v %v", r, err)
	}
	plain, _ := statestore.Dial("redis://" + srv.Addr + "?dial_timeout=1s&read_timeout=1s&max_retries=-1")
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plain connection to the TLS port worked")
	}
}

// selfSigned writes a certificate for 127.0.0.1 that is its own CA.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fusebox-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
