package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// Options choose the demo's ports and folder; they are the flags of
// `mbus-gateway demo`, and Check names them so.
type Options struct {
	// MQTTPort is the embedded broker's port on 127.0.0.1; 0 picks a free one.
	MQTTPort int
	// WebPort is the status page's port; 0 picks a free one.
	WebPort int
	// WebListen is the IP address the status page listens on; anything
	// but loopback opens it to the network.
	WebListen string
	// DataDir keeps the database; "" means a temporary folder removed by Close.
	DataDir string
	// PollInterval is the seconds between two reads of a meter.
	PollInterval int
	// BrokerLog receives the broker's warnings.
	BrokerLog io.Writer
}

// Check returns every problem of o, one per line.
func (o Options) Check() error {
	var errs []error
	for _, p := range []struct {
		name string
		port int
	}{{"--mqtt-port", o.MQTTPort}, {"--web-port", o.WebPort}} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want 0 (a free port) to 65535", p.name, p.port))
		}
	}
	if _, err := netip.ParseAddr(o.WebListen); err != nil {
		errs = append(errs, fmt.Errorf("--web-listen %q: want an IP address such as 127.0.0.1 or 0.0.0.0", o.WebListen))
	}
	if o.PollInterval < 1 {
		errs = append(errs, fmt.Errorf("--poll-interval %d: want at least 1 (seconds)", o.PollInterval))
	}
	return errors.Join(errs...)
}

// Env is what the gateway runs against in the demo: the demo bus served
// over loopback TCP, an embedded MQTT broker, and the options pointing at
// both. Close stops them.
type Env struct {
	// Options are the gateway's, loaded as an options file would be.
	Options *config.Options
	// WebListen is where the status page listens, WebAllow who may see
	// it: this machine only, unless it listens beyond loopback.
	WebListen string
	WebAllow  []string

	listenIP   netip.Addr
	bus        *sim.Bus
	busAddr    net.Addr
	stopBus    context.CancelFunc
	busDone    chan error
	broker     *mochi.Server
	brokerAddr *net.TCPAddr
	tmpDir     string
}

// Start serves the demo bus and the broker for options checked by
// Check. The bus outlives ctx until Close: the gateway's last read when
// ctx ends must not find it gone.
func Start(ctx context.Context, o Options) (e *Env, err error) {
	listenIP, err := netip.ParseAddr(o.WebListen)
	if err != nil {
		return nil, fmt.Errorf("web listen: %w", err)
	}
	setup, err := Setup()
	if err != nil {
		return nil, err
	}
	bus, err := setup.NewBus()
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	busLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	e = &Env{
		WebListen: net.JoinHostPort(o.WebListen, strconv.Itoa(o.WebPort)),
		WebAllow:  []string{"127.0.0.1", "::1"},
		listenIP:  listenIP,
		bus:       bus,
		busAddr:   busLn.Addr(),
		busDone:   make(chan error, 1),
	}
	if !listenIP.IsLoopback() {
		e.WebAllow = []string{"0.0.0.0/0", "::/0"}
	}
	var busCtx context.Context
	busCtx, e.stopBus = context.WithCancel(context.WithoutCancel(ctx))
	go func() { e.busDone <- bus.ServeTCP(busCtx, busLn) }()
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()

	if e.broker, e.brokerAddr, err = startBroker(o.MQTTPort, o.BrokerLog); err != nil {
		return nil, err
	}
	dataDir := o.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "mbus-gateway-demo-"); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		e.tmpDir = dataDir
	}
	if e.Options, err = options(bus.Meters(), e.busAddr.String(), e.brokerAddr, dataDir, o.PollInterval); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops the broker, then the bus, and removes a temporary data
// folder; call it after the gateway stopped, as it says "offline" on its
// way out.
func (e *Env) Close() error {
	var errs []error
	if e.broker != nil {
		_ = e.broker.Close() // only fails on listeners already closed
	}
	e.stopBus()
	if err := <-e.busDone; err != nil {
		errs = append(errs, fmt.Errorf("simulator: %w", err))
	}
	if e.tmpDir != "" {
		if err := os.RemoveAll(e.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("data dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// startBroker runs an embedded MQTT broker on 127.0.0.1:port (0: a free
// port) and returns its address. It accepts every client: it is reachable
// from this machine only.
func startBroker(port int, log io.Writer) (*mochi.Server, *net.TCPAddr, error) {
	if log == nil {
		log = io.Discard
	}
	s := mochi.New(&mochi.Options{
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, nil, fmt.Errorf("mqtt broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "demo", Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	if err := s.AddListener(tcp); err != nil {
		return nil, nil, fmt.Errorf("mqtt broker: %w", err)
	}
	if err := s.Serve(); err != nil {
		_ = s.Close()
		return nil, nil, fmt.Errorf("mqtt broker: %w", err)
	}
	addr, err := net.ResolveTCPAddr("tcp", tcp.Address())
	if err != nil {
		_ = s.Close()
		return nil, nil, fmt.Errorf("mqtt broker: %w", err)
	}
	return s, addr, nil
}

// options writes the demo's options as an options file would hold them
// and loads them like one, so that defaults and checks are those of
// `run`. The meters are listed by primary address: a scan would find them
// too, but at 2400 baud probing 251 addresses takes most of a minute.
func options(onBus []sim.MeterStatus, busAddr string, broker *net.TCPAddr, dataDir string, interval int) (*config.Options, error) {
	meters := make([]map[string]any, len(onBus))
	for i, m := range onBus {
		meters[i] = map[string]any{"address": strconv.Itoa(int(m.Primary)), "name": m.Name}
	}
	data, err := json.Marshal(map[string]any{
		"tcp_address":   busAddr,
		"baudrate":      2400,
		"poll_interval": interval,
		"meters":        meters,
		"mqtt":          map[string]any{"host": broker.IP.String(), "port": broker.Port},
		"data_dir":      dataDir,
		"metrics_port":  0,
	})
	if err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	return config.Parse(data, "demo options.json")
}

// Print says where everything is, with the status page served at web.
// Tests wait for the status page line.
func (e *Env) Print(w io.Writer, web net.Addr) {
	host := "127.0.0.1"
	if e.listenIP.IsLoopback() {
		host = e.listenIP.String()
	}
	_, port, _ := net.SplitHostPort(web.String())
	page := "http://" + net.JoinHostPort(host, port) + "/"
	b := e.brokerAddr
	fmt.Fprintf(w, "mbus-gateway demo: %d simulated meters on tcp://%s, MQTT broker on %s\n\n", len(e.bus.Meters()), e.busAddr, b)
	fmt.Fprintf(w, "  status page  %s\n", page)
	fmt.Fprintf(w, "  metrics      %smetrics\n", page)
	fmt.Fprintf(w, "  readings     mosquitto_sub -h %s -p %d -t 'mbus/#' -v\n", b.IP, b.Port)
	fmt.Fprintf(w, "  discovery    mosquitto_sub -h %s -p %d -t 'homeassistant/#' -v\n\n", b.IP, b.Port)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
