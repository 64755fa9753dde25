// Package simtest is test support for serving a simulated M-Bus to the
// code under test, the way the gateway meets a real bus.
package simtest

import (
	"context"
	"net"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/demo"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// ServeTCP serves bus on a loopback TCP port, as an M-Bus-to-TCP
// converter would, and returns its host:port. The bus is served until the
// test ends: the cleanup stops it and waits until every connection is
// done, so nothing outlives the test, and a serve error fails the test.
func ServeTCP(t testing.TB, bus *sim.Bus) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simtest: serving the bus: %v", err)
		}
	})
	return ln.Addr().String()
}

// ServeDemo serves the demo bus (the meters of `mbus-gateway demo`, at
// primary addresses 1 to 7) without pacing or answer delay, as ServeTCP
// does: the tests using it are about the gateway, not about timing.
func ServeDemo(t testing.TB) string {
	t.Helper()
	setup, err := demo.Setup()
	if err != nil {
		t.Fatal(err)
	}
	setup.Options = sim.Options{}
	bus, err := setup.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	return ServeTCP(t, bus)
}
