package supervisor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "tok-3f9a1c77e2"

// answer is one canned Supervisor reply.
type answer struct {
	status      int
	contentType string
	body        string
}

// server answers every request with a, after checking the bearer token.
func server(t *testing.T, a answer) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("got Authorization %q, want the bearer token", got)
		}
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, Token: token, HTTP: srv.Client()}
}

func TestMQTT(t *testing.T) {
	c := server(t, answer{200, "application/json", `{"result":"ok","data":{"host":"core-mosquitto","port":1883,"ssl":false,` +
		`"protocol":"3.1.1","username":"addons","password":"Eeph3ahj","addon":"core_mosquitto"}}`})
	got, err := c.MQTT(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Service{Host: "core-mosquitto", Port: 1883, Protocol: "3.1.1", Username: "addons",
		Password: logging.Secret("Eeph3ahj"), Addon: "core_mosquitto"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if string(got.Password) != "Eeph3ahj" {
		t.Errorf("got password %q, want the real one for connecting", string(got.Password))
	}
}

func TestSelfInfo(t *testing.T) {
	c := server(t, answer{200, "application/json", `{"result":"ok","data":{"name":"M-Bus Gateway","ingress_entry":"/api/hassio_ingress/abc",` +
		`"ingress_url":"/api/hassio_ingress/abc/","ip_address":"172.30.33.4","version":"1.2.0","state":"started"}}`})
	got, err := c.SelfInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Info{IngressEntry: "/api/hassio_ingress/abc", IngressURL: "/api/hassio_ingress/abc/", IPAddress: "172.30.33.4", Version: "1.2.0"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMQTTFailures(t *testing.T) {
	tests := []struct {
		name string
		a    answer
		want string
	}{
		{"no broker add-on", answer{400, "application/json", `{"result":"error","message":"Service not enabled"}`},
			"no MQTT service: install the Mosquitto broker add-on or set mqtt.host"},
		{"other 400", answer{400, "application/json", `{"result":"error","message":"Something else"}`},
			"supervisor: GET /services/mqtt: 400 Bad Request: Something else"},
		{"unauthorized", answer{401, "application/json", `{"result":"error","message":"Invalid token"}`},
			"supervisor: GET /services/mqtt: 401 Unauthorized: Invalid token (is the token valid and does the add-on ask for this API?)"},
		{"html from a proxy", answer{502, "text/html; charset=utf-8", "<html><body>Bad gateway</body></html>"},
			"supervisor: GET /services/mqtt: 502 Bad Gateway: answer is not the Supervisor's JSON (text/html, 37 bytes)"},
		{"server error", answer{500, "application/json", `{"result":"error","message":"Unknown error, see supervisor"}`},
			"supervisor: GET /services/mqtt: 500 Internal Server Error: Unknown error, see supervisor"},
		{"garbage", answer{200, "application/json", `{"result":"ok","data":`},
			"supervisor: GET /services/mqtt: 200 OK: answer is not the Supervisor's JSON (application/json, 22 bytes)"},
		{"empty", answer{200, "", ""},
			"supervisor: GET /services/mqtt: 200 OK: empty answer"},
		{"wrong data", answer{200, "application/json", `{"result":"ok","data":{"host":"x","port":"1883"}}`},
			"supervisor: GET /services/mqtt: unexpected data: json: cannot unmarshal string into Go struct field serviceWire.port of type int"},
		{"no host", answer{200, "application/json", `{"result":"ok","data":{"port":1883}}`},
			`supervisor: GET /services/mqtt: incomplete answer (host "", port 1883)`},
		{"too large", answer{200, "application/json", `{"result":"ok","data":{"host":"` + strings.Repeat("a", maxBody) + `"}}`},
			"supervisor: GET /services/mqtt: 200 OK: answer larger than 1048576 bytes"},
		{"token echoed", answer{403, "application/json", `{"result":"error","message":"token ` + token + ` not allowed"}`},
			"supervisor: GET /services/mqtt: 403 Forbidden: token *** not allowed (is the token valid and does the add-on ask for this API?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server(t, tt.a).MQTT(context.Background())
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the token is in the error %q", err)
			}
		})
	}
}

func TestErrNoMQTTService(t *testing.T) {
	c := server(t, answer{400, "application/json", `{"result":"error","message":"Service not enabled"}`})
	_, err := c.MQTT(context.Background())
	if !errors.Is(err, ErrNoMQTTService) {
		t.Errorf("got %v, want ErrNoMQTTService", err)
	}
	c = server(t, answer{500, "text/plain", "oops"})
	_, err = c.MQTT(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Errorf("got %v, want an APIError with status 500", err)
	}
}

// TestTimeout: a Supervisor that does not answer is given up on when the
// context ends.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := &Client{BaseURL: srv.URL, Token: token, HTTP: srv.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.SelfInfo(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want context.DeadlineExceeded", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "supervisor: GET /addons/self/info: ") {
		t.Errorf("got %q, want the request named", err)
	}
}

// TestUnreachable: nobody listens.
func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := &Client{BaseURL: url, Token: token}
	_, err := c.MQTT(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), token) {
		t.Errorf("got %v, want connection refused without the token", err)
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name                string
		token, legacy, api  string
		wantBase, wantToken string
		wantErr             error
	}{
		{"standalone", "", "", "", "", "", ErrNoToken},
		{"add-on", token, "", "", DefaultBaseURL, token, nil},
		{"legacy token", "", "old", "", DefaultBaseURL, "old", nil},
		{"api override", token, "", "http://127.0.0.1:8123/", "http://127.0.0.1:8123", token, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SUPERVISOR_TOKEN", tt.token)
			t.Setenv("HASSIO_TOKEN", tt.legacy)
			t.Setenv("SUPERVISOR_API", tt.api)
			c, err := FromEnv()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if c.BaseURL != tt.wantBase || string(c.Token) != tt.wantToken {
				t.Errorf("got %q with token %q, want %q with %q", c.BaseURL, string(c.Token), tt.wantBase, tt.wantToken)
			}
		})
	}
}
