//go:build !nodemo

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/demo"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// demoFlags are the flags of `mbus-gateway demo`.
type demoFlags struct {
	mqttPort, webPort int
	webListen         string
	dataDir           string
	pollInterval      int
}

func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, error) {
	var f demoFlags
	fs := newFlagSet("demo", stderr,
		"usage: mbus-gateway demo [--mqtt-port N] [--web-port N] [--web-listen ADDR] [--data-dir DIR]",
		"Runs simulated meters, an MQTT broker, the gateway and its status page; Ctrl-C stops.")
	fs.IntVar(&f.mqttPort, "mqtt-port", 0, "port of the embedded MQTT broker (0: a free one)")
	fs.IntVar(&f.webPort, "web-port", 0, "port of the status page (0: a free one)")
	fs.StringVar(&f.webListen, "web-listen", "127.0.0.1", "address the status page listens on; anything but loopback opens it to the network")
	fs.StringVar(&f.dataDir, "data-dir", "", "keep the database here (default: a temporary folder, removed at exit)")
	fs.IntVar(&f.pollInterval, "poll-interval", 10, "seconds between two reads of a meter")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"--mqtt-port", f.mqttPort}, {"--web-port", f.webPort}} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want 0 (a free port) to 65535", p.name, p.port))
		}
	}
	if _, err := netip.ParseAddr(f.webListen); err != nil {
		errs = append(errs, fmt.Errorf("--web-listen %q: want an IP address such as 127.0.0.1 or 0.0.0.0", f.webListen))
	}
	if f.pollInterval < 1 {
		errs = append(errs, fmt.Errorf("--poll-interval %d: want at least 1 (seconds)", f.pollInterval))
	}
	return f, errors.Join(errs...)
}

// cmdDemo is `mbus-gateway demo`: the gateway as `run` runs it, fed by
// the demo bus over loopback TCP and publishing to an embedded broker.
func cmdDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f, err := parseDemoFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		printLines(stderr, "mbus-gateway demo: ", err.Error())
		return 2
	}
	err = runDemo(ctx, f, stdout, stderr)
	if err == nil {
		return 0
	}
	if !errors.Is(err, errReported) {
		printLines(stderr, "mbus-gateway demo: ", err.Error())
	}
	return 1
}

// runDemo starts the bus and the broker, runs the gateway until ctx ends,
// then stops the broker and the bus, in that order.
func runDemo(ctx context.Context, f demoFlags, stdout, stderr io.Writer) (err error) {
	setup, err := demo.Setup()
	if err != nil {
		return err
	}
	bus, err := setup.NewBus()
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	busLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	// The bus outlives the gateway, whose last read must not find it gone.
	busCtx, stopBus := context.WithCancel(context.WithoutCancel(ctx))
	busDone := make(chan error, 1)
	go func() { busDone <- bus.ServeTCP(busCtx, busLn) }()
	defer func() {
		stopBus()
		if berr := <-busDone; berr != nil && err == nil {
			err = fmt.Errorf("simulator: %w", berr)
		}
	}()

	broker, brokerAddr, err := startBroker(f.mqttPort, stderr)
	if err != nil {
		return err
	}
	// The broker stops after the gateway, which says "offline" on its way out.
	defer func() { _ = broker.Close() }()

	dataDir := f.dataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "mbus-gateway-demo-"); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		defer func() { _ = os.RemoveAll(dataDir) }()
	}
	opts, err := demoOptions(bus.Meters(), busLn.Addr().String(), brokerAddr, dataDir, f.pollInterval)
	if err != nil {
		return err
	}
	listenIP, _ := netip.ParseAddr(f.webListen)
	allow := []string{"127.0.0.1", "::1"}
	if !listenIP.IsLoopback() {
		allow = []string{"0.0.0.0/0", "::/0"}
	}
	meters := len(bus.Meters())
	code := runDaemon(ctx, opts, settings{
		version:   version,
		logOut:    stderr,
		webListen: net.JoinHostPort(f.webListen, strconv.Itoa(f.webPort)),
		webAllow:  allow,
		ready: func(web, _ net.Addr) {
			printDemo(stdout, demoAddrs{bus: busLn.Addr(), broker: brokerAddr, web: web, listenIP: listenIP, meters: meters})
		},
	}, "mbus-gateway demo: ", stderr)
	if code != 0 {
		return errReported
	}
	return nil
}

// errReported is a failure already reported on stderr or in the log.
var errReported = errors.New("failed")

// startBroker runs an embedded MQTT broker on 127.0.0.1:port (0: a free
// port) and returns its address. It accepts every client: it is reachable
// from this machine only.
func startBroker(port int, stderr io.Writer) (*mochi.Server, *net.TCPAddr, error) {
	s := mochi.New(&mochi.Options{
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
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

// demoOptions writes the demo's options as an options file would hold
// them and loads them like one, so that defaults and checks are those of
// `run`. The meters are listed by primary address: a scan would find them
// too, but at 2400 baud probing 251 addresses takes most of a minute.
func demoOptions(onBus []sim.MeterStatus, busAddr string, broker *net.TCPAddr, dataDir string, interval int) (*config.Options, error) {
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

// demoAddrs is what the demo tells its user.
type demoAddrs struct {
	bus, web net.Addr
	broker   *net.TCPAddr
	listenIP netip.Addr
	meters   int
}

// printDemo says where everything is. Tests wait for the status page line.
func printDemo(w io.Writer, a demoAddrs) {
	host := "127.0.0.1"
	if a.listenIP.IsLoopback() {
		host = a.listenIP.String()
	}
	_, port, _ := net.SplitHostPort(a.web.String())
	page := "http://" + net.JoinHostPort(host, port) + "/"
	fmt.Fprintf(w, "mbus-gateway demo: %d simulated meters on tcp://%s, MQTT broker on %s\n\n", a.meters, a.bus, a.broker)
	fmt.Fprintf(w, "  status page  %s\n", page)
	fmt.Fprintf(w, "  metrics      %smetrics\n", page)
	fmt.Fprintf(w, "  readings     mosquitto_sub -h %s -p %d -t 'mbus/#' -v\n", a.broker.IP, a.broker.Port)
	fmt.Fprintf(w, "  discovery    mosquitto_sub -h %s -p %d -t 'homeassistant/#' -v\n\n", a.broker.IP, a.broker.Port)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
