package mqtt

import (
	"slices"
	"strings"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// TestTLSClientCertificate runs the client against a Mosquitto listener
// that speaks TLS with a certificate made by the test and requires a
// client certificate: with the authority's CA file and a client
// certificate readings arrive; without the client certificate, or trusting
// another authority, the client does not connect and says why.
func TestTLSClientCertificate(t *testing.T) {
	certs := mosquittotest.NewCerts(t)
	other := mosquittotest.NewCerts(t)
	b := mosquittotest.Start(t, mosquittotest.WithTLS(certs))
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/#")

	t.Run("ca and client certificate", func(t *testing.T) {
		cfg := testConfig("tcp://" + b.TLSAddr())
		cfg.TLS, cfg.CAFile, cfg.CertFile, cfg.KeyFile = true, certs.CA, certs.ClientCert, certs.ClientKey
		box := openStore(t)
		enqueue(t, box, heatReading("kam_00000042", t0, 1234))
		c := start(t, cfg, box)
		rec.WaitFor("mbus/bridge/state", payloadIs("online"), waitTimeout)
		rec.WaitFor("mbus/kam_00000042/reading", nil, waitTimeout)
		if st := c.Snapshot(); !st.Connected || !strings.HasPrefix(st.Broker, "ssl://") {
			t.Errorf("status: connected %v to %q, want connected over ssl://", st.Connected, st.Broker)
		}
	})

	for _, tt := range []struct {
		name          string
		ca, cert, key string
		wantErr       []string // one of
	}{
		// With TLS 1.3 the client learns that its certificate is missing
		// from the alert, or, when it already wrote CONNECT, from a reset.
		{"no client certificate", certs.CA, "", "", []string{"tls: certificate required", "connection reset by peer", "EOF"}},
		{"server signed by another authority", other.CA, certs.ClientCert, certs.ClientKey, []string{"certificate signed by unknown authority"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("ssl://" + b.TLSAddr())
			cfg.CAFile, cfg.CertFile, cfg.KeyFile = tt.ca, tt.cert, tt.key
			c := start(t, cfg, openStore(t))
			waitUntil(t, "a connection error", func() bool { return c.Snapshot().LastError != "" })
			st := c.Snapshot()
			t.Logf("refused: %s", st.LastError)
			if st.Connected {
				t.Errorf("connected, want refused")
			}
			if !slices.ContainsFunc(tt.wantErr, func(w string) bool { return strings.Contains(st.LastError, w) }) {
				t.Errorf("last error %q, want one containing one of %q", st.LastError, tt.wantErr)
			}
		})
	}
}

func TestTLSConfigFiles(t *testing.T) {
	certs := mosquittotest.NewCerts(t)
	for _, tt := range []struct {
		name      string
		cert, key string
		want      string
	}{
		{"certificate without key", certs.ClientCert, "", "has no key file"},
		{"key without certificate", "", certs.ClientKey, "has no certificate file"},
		{"key does not match", certs.ClientCert, certs.ServerKey, "client certificate"},
		{"missing certificate", "/nonexistent/client.pem", certs.ClientKey, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("ssl://127.0.0.1:8883")
			cfg.CertFile, cfg.KeyFile = tt.cert, tt.key
			_, err := New(cfg, openStore(t), discard(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
