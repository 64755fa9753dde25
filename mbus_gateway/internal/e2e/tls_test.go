package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// TestRunTLSBroker: the gateway reaches a broker that speaks only TLS with
// a certificate of a private authority and requires a client certificate,
// configured as DOCS.md says (mqtt.tls, mqtt.ca_file, mqtt.cert_file,
// mqtt.key_file, the TLS port); readings arrive.
func TestRunTLSBroker(t *testing.T) {
	certs := mosquittotest.NewCerts(t)
	broker := mosquittotest.Start(t, mosquittotest.WithTLS(certs))
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	dir := t.TempDir()
	host, port, _ := strings.Cut(broker.TLSAddr(), ":")
	path, _ := gatewayOptions(t, dir, startBus(t), broker, map[string]any{
		"meters": []map[string]any{{"address": "1"}},
		"mqtt": map[string]any{"host": host, "port": mustAtoi(t, port), "tls": true,
			"ca_file": certs.CA, "cert_file": certs.ClientCert, "key_file": certs.ClientKey},
	})
	gw := start(t, hermeticEnv(), "run", "--config", path)
	if m := rec.WaitFor("mbus/bridge/state", nil, 30*time.Second); string(m.Payload) != "online" {
		t.Errorf("mbus/bridge/state: got %q, want online", m.Payload)
	}
	rec.WaitFor("mbus/"+heatMeter+"/reading", nil, 30*time.Second)
	// "connected" is logged once discovery is out, after "online".
	if err := gw.stderr.WaitCount("broker=ssl://", 1, 30*time.Second); err != nil {
		t.Errorf("log: no connection to ssl://…: %v", err)
	}
	stop(t, gw)
}
