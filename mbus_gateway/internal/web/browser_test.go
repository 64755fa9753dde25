package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

const ingressToken = "Xy7-test_token"

// chromium finds the browser; without it the test is skipped, or fails
// under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (Debian package chromium); CI must run the browser test")
	}
	t.Skip("chromium is not installed")
	return ""
}

// supervisor is a stand-in for the Supervisor's ingress proxy: it serves
// the add-on under /api/hassio_ingress/<token>/, strips that prefix and
// tells the add-on about it in X-Ingress-Path. Like the Supervisor, it
// passes the browser's Host and Origin on unchanged.
func supervisor(t *testing.T, addon string) *httptest.Server {
	t.Helper()
	target, err := url.Parse(addon)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "/api/hassio_ingress/" + ingressToken
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			p := strings.TrimPrefix(r.In.URL.Path, prefix)
			if p == "" {
				p = "/"
			}
			r.Out.URL.Path, r.Out.URL.RawPath = p, ""
			r.Out.Header.Set("X-Ingress-Path", prefix)
			r.Out.Header.Set("X-Hass-Source", "core.ingress")
		},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix+"/") && r.URL.Path != prefix {
			http.NotFound(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// artifactDir is $ARTIFACT_DIR, else artifacts/ at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("ARTIFACT_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "artifacts")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// void runs an action for its effect only.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := a(ctx, tg)
		return err
	})
}

// screenshot sizes the viewport and saves a full-page PNG as an artifact.
func screenshot(t *testing.T, name string, width, height int64, mobile bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
		if mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
		}
		if _, err := chromedp.EmulateViewport(width, height, opts...)(ctx, tg); err != nil {
			return err
		}
		if _, err := chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)(ctx, tg); err != nil {
			return err
		}
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		dir := artifactDir(t)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), buf, 0o644)
	})
}

// colorScheme sets what prefers-color-scheme reports.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// textIs waits until the element's text is want.
func textIs(sel, want string) chromedp.Action[chromedp.Void] {
	return void(chromedp.Poll[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.trim() === %q; })()`, sel, want),
		chromedp.WithPollingTimeout(10*time.Second)))
}

// isTrue waits until the JavaScript expression is true.
func isTrue(expr string) chromedp.Action[chromedp.Void] {
	return void(chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second)))
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

func TestBrowser(t *testing.T) {
	browser := chromium(t)
	const corrupt = "database file was corrupt: moved aside to /data/mbus-gateway.db.corrupt-20240501T101500"
	warnings := &fakeWarnings{list: []string{corrupt}}
	f := newFixture(t, func(o *Options) {
		o.Allow = []string{"127.0.0.1", "::1"} // the test's stand-in for the Supervisor
		o.Refresh = 50 * time.Millisecond
		o.Warnings = warnings.get
		o.Bus = func() BusInfo {
			return BusInfo{Device: "/dev/ttyUSB0", Baud: 2400, TxBytes: 120, RxBytes: 4800, Timeouts: 4, Garbled: 2}
		}
	}, heatMeter(t), waterMeter())
	sec, err := mbus.ParseSecondaryAddress("12345678AE4C0107")
	if err != nil {
		t.Fatal(err)
	}
	f.poller.found = []master.Found{{Primary: 5, Secondary: heatMeter(t).Reading.Header.Address}, {Primary: 9, Secondary: sec}, {Primary: 20, Collision: true}}
	f.poller.steps = 4
	f.poller.gate = make(chan struct{})
	f.poller.scanning = make(chan struct{})
	f.poller.update(func(s *poll.Snapshot) { s.Bus.Polls, s.Bus.Errors, s.Load = 1284, 3, 0.04 })

	br := browse(t, browser, f.s)
	ctx, run := br.ctx, br.run
	page := br.page
	heat := "#meter-kam_06855817"

	run("open the page under the ingress prefix",
		colorScheme("light"),
		chromedp.Navigate(page),
		visible(heat),
		textIs(heat+" .meter-name", "Heating"),
		textIs(heat+` tr[data-key="energy"] td.num`, "37,351"),
		textIs(heat+` tr[data-key="energy"] td.unit`, "kWh"),
		textIs(heat+` tr[data-key="volume"] td.unit`, "m³"),
		textIs(heat+" .pill", "Online"),
		textIs("#meter-addr_7 .pill", "Offline"),
		textIs("#meter-addr_7 .error", "read 7: no answer"),
		textIs("#bus-state", "Up"),
		textIs("#broker-state", "Connected"),
		textIs("#live-text", "Live"),
		visible("#warnings"),
		textIs("#warning-list", corrupt),
		// Transport errors (3) and errors on the line count alike.
		textIs("#bus dd:nth-of-type(4)", "9"),
		textIs("#bus dd:nth-of-type(5)", "4 timeouts · 2 garbled"),
		isTrue(`document.querySelector("#scan-card").getBoundingClientRect().top < document.querySelector("#meters").getBoundingClientRect().top`),
	)
	run("open the telegram", click(heat+" details.telegram summary"), visible(heat+" pre.raw"))
	subtitle, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(heat+" .meter-sub")))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(heat+" pre.raw")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(subtitle, "Address 5") || !strings.Contains(subtitle, "KAM") {
		t.Errorf("meter subtitle %q lacks address or manufacturer", subtitle)
	}
	if raw != heatMeter(t).Raw[0] {
		t.Errorf("raw telegram: got %q, want %q", raw, heatMeter(t).Raw[0])
	}

	// A new reading arrives without reloading the page.
	f.poller.setEnergy(0, 40000.5)
	run("live update", textIs(heat+` tr[data-key="energy"] td.num`, "40,000.5"))

	// An identifier keeps its digits; a total the guard holds back says
	// what Home Assistant shows instead.
	f.poller.update(func(s *poll.Snapshot) {
		rd := *s.Meters[0].Reading
		rd.Records = append(slices.Clone(rd.Records), mbus.Record{Key: "fabrication_number", Quantity: "fabrication_number",
			Value: mbus.Value{Kind: mbus.KindNumber, Num: 123456}, DIF: "\x0c", VIF: "\x78"},
			mbus.Record{Key: "energy_s1", Quantity: "energy", Unit: "kWh", Storage: 1,
				Value: mbus.Value{Kind: mbus.KindNumber, Num: 36000}, DIF: "\x44", VIF: "\x06"},
			mbus.Record{Key: "date_s1", Quantity: "date", Storage: 1,
				Value: mbus.Value{Kind: mbus.KindText, Text: "2025-12-31"}, DIF: "\x42", VIF: "\x6c"})
		rd.Records[0].Value.Num = 2000
		rd.Guard = map[string]reading.Guarded{"energy": {Reason: reading.GuardDrop, Published: 40000.5, Raw: "2000"}}
		s.Meters[0].Reading = &rd
	})
	run("identifier and held total, history folded",
		textIs(heat+` details.more tr[data-key="fabrication_number"] td.num`, "00123456"),
		textIs(heat+` tr[data-key="energy"] td.num small.guard`, "held (drop), Home Assistant shows 40,000.5"),
		textIs(heat+` details.more tr[data-key="energy_s1"] td.num`, "36,000"),
		textIs(heat+` details.more tr[data-key="date_s1"] td.num`, "Dec 31, 2025"),
		textIs(heat+` details.more summary`, "3 more values (history, tariffs, diagnostics)"),
		isTrue(`!document.querySelector("`+heat+` details.more").open`),
		isTrue(`document.querySelector("`+heat+` table.values tr[data-key='flow_temperature']").closest("details") === null`),
	)

	before := len(f.poller.readLog())
	run("read now",
		click(heat+" button.read-now"),
		textIs("#toast", "Read Heating."),
	)
	if got := f.poller.readLog()[before:]; !slices.Equal(got, []string{"kam_06855817"}) {
		t.Errorf("reads after the click: got %q, want the heat meter once", got)
	}

	run("scan with progress",
		chromedp.SetValue(chromedp.CSS("#scan-mode"), "primary"),
		click("#scan-start"),
		visible("#scan-progress"),
		textIs("#scan-text", "1 of 4 · 1 found"),
		isTrue(`document.querySelector("`+heat+` .meter-meta").textContent.includes("reads paused while the bus is scanned")`),
	)
	disabled, err := chromedp.Run(ctx, chromedp.JavascriptAttribute[bool](chromedp.CSS("#scan-start"), "disabled"))
	if err != nil {
		t.Fatal(err)
	}
	if !disabled {
		t.Error("scan button enabled while a scan runs")
	}
	close(f.poller.gate)
	row := `#found-rows tr[data-address="12345678AE4C0107"]`
	run("scan result",
		visible(row+" button.add"),
		textIs("#scan-summary", "3 found in 8 probes"),
		textIs(`#found-rows tr[data-address="068558172D2C0804"] .pill`, "Configured"),
		textIs(`#found-rows tr[data-address="20"] .pill`, "Several meters answer here"),
		chromedp.SendKeys(chromedp.CSS(row+" input"), "Cold water"),
		click(row+" button.add"),
		visible("#meter-addr_12345678ae4c0107"),
		textIs("#meter-addr_12345678ae4c0107 .meter-name", "Cold water"),
		textIs(row+" .pill", "Configured"),
	)
	if got, want := f.adder.calls(), []AddRequest{{Address: "12345678AE4C0107", Name: "Cold water"}}; !slices.Equal(got, want) {
		t.Errorf("adder calls: got %+v, want %+v", got, want)
	}

	run("desktop screenshot", screenshot(t, "status-desktop.png", 1280, 900, false))
	run("phone screenshot", screenshot(t, "status-phone.png", 390, 844, true))
	run("dark screenshot", colorScheme("dark"), screenshot(t, "status-desktop-dark.png", 1280, 900, false))
	run("phone dark screenshot", screenshot(t, "status-phone-dark.png", 390, 844, true))

	warnings.set(nil)
	run("warnings gone", chromedp.WaitNotVisible(chromedp.CSS("#warnings")))

	br.finish()
}

// browserRun is a headless browser on a server's page behind the
// stand-in ingress proxy, collecting the console's problems.
type browserRun struct {
	t    *testing.T
	ctx  context.Context
	page string // the page's URL under the ingress prefix

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	problems []string // exceptions, CSP violations, failed requests
}

// browse serves s's page through the ingress stand-in and opens a browser
// on it, both stopped when the test ends.
func browse(t *testing.T, browser string, s *Server) *browserRun {
	t.Helper()
	br := &browserRun{t: t}
	addon := httptest.NewServer(s.Handler())
	t.Cleanup(addon.Close)
	t.Cleanup(s.close) // ends event streams before the servers close
	ha := supervisor(t, addon.URL)
	br.page = ha.URL + "/api/hassio_ingress/" + ingressToken + "/"

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The browser must be gone before goleak looks and before the servers
	// wait for its connections.
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		cancelTab()
		cancelAlloc()
	})
	br.ctx, br.cancel = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(br.cancel)

	// Exceptions, CSP violations and failed requests show up here.
	messages := chromedp.Console(br.ctx)
	t.Cleanup(func() { br.cancel(); br.wg.Wait() })
	br.wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				br.mu.Lock()
				br.problems = append(br.problems, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				br.mu.Unlock()
			}
		}
	})
	return br
}

// run carries out actions; a failure ends the test with the page's text
// and the browser's problems.
func (br *browserRun) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	br.t.Helper()
	if err := chromedp.Do(br.ctx, actions...); err != nil {
		text, _ := chromedp.Run(br.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		br.mu.Lock()
		defer br.mu.Unlock()
		br.t.Fatalf("%s: %v\nbrowser problems: %q\npage text:\n%s", what, err, br.problems, text)
	}
}

// finish closes the browser's console and fails the test on any problem
// it reported.
func (br *browserRun) finish() {
	br.t.Helper()
	br.cancel() // ends the console reader
	br.wg.Wait()
	if len(br.problems) > 0 {
		br.t.Errorf("browser reported problems:\n%s", strings.Join(br.problems, "\n"))
	}
}
