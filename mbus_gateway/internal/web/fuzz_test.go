package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// cancelOnFlush ends the request once the handler flushes: an event
// stream then stops after its first event instead of running forever.
type cancelOnFlush struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (c cancelOnFlush) Flush() {
	c.ResponseRecorder.Flush()
	c.cancel()
}

// FuzzHandler sends arbitrary requests to both handlers: none may panic
// or answer with a server error.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, path, ctype, body string }{
		{"GET", "/", "", ""},
		{"GET", "/status", "", ""},
		{"GET", "/events", "", ""},
		{"HEAD", "/assets/app.js", "", ""},
		{"GET", "/assets/../../etc/passwd", "", ""},
		{"POST", "/scan", "application/json", `{"mode":"primary"}`},
		{"POST", "/scan", "application/json", `{"mode":"secondary"}{}`},
		{"POST", "/meters", "application/json", `{"address":"5","name":"Heat"}`},
		{"POST", "/meters", "application/json", `{"address":"FFFFFFFFFFFFFFFF"}`},
		{"POST", "/meters", "text/plain", `address=5`},
		{"POST", "/meters/kam_06855817/read", "application/json", `{}`},
		{"POST", "/meters/%00/read", "", ""},
		{"DELETE", "/metrics", "", ""},
		{"OPTIONS", "*", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, s.body)
	}
	fx := newFixture(f, nil, heatMeter(f), waterMeter())
	handlers := []http.Handler{fx.s.Handler(), fx.s.MetricsHandler()}
	f.Fuzz(func(t *testing.T, method, path, ctype, body string) {
		for _, h := range handlers {
			ctx, cancel := context.WithCancel(context.Background())
			req, err := http.NewRequestWithContext(ctx, method, "http://gateway"+path, strings.NewReader(body))
			if err != nil {
				cancel()
				return // not a request a client could send
			}
			req.RemoteAddr = ingressAddr
			req.Header.Set("Content-Type", ctype)
			w := cancelOnFlush{httptest.NewRecorder(), cancel}
			h.ServeHTTP(w, req)
			cancel()
			if w.Code >= 500 {
				t.Errorf("%s %q (%s, %q): %d %s", method, path, ctype, body, w.Code, w.Body)
			}
		}
	})
}
