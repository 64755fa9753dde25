// Package supervisor talks to the Home Assistant Supervisor API from inside
// the add-on: it asks for the MQTT broker the Mosquitto add-on provides
// (GET /services/mqtt) and for the add-on's own ingress entry
// (GET /addons/self/info).
//
// The token authenticates the add-on; it is held as logging.Secret and
// never appears in errors or logs.
package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
)

// DefaultBaseURL is where the Supervisor answers inside an add-on.
const DefaultBaseURL = "http://supervisor"

// Ingress: Home Assistant's proxy forwards the add-on's panel to this port
// (the manifest's default ingress_port), and its requests come from this
// address only.
const (
	IngressPort  = 8099
	IngressProxy = "172.30.32.2"
)

// DefaultTimeout bounds one request when the caller's context has no
// deadline: the Supervisor answers in milliseconds, and a gateway that
// waits for it forever would never start.
const DefaultTimeout = 10 * time.Second

// maxBody bounds the answers read: the real ones are a few hundred bytes.
const maxBody = 1 << 20

var (
	// ErrNoToken means the process does not run as an add-on: neither
	// SUPERVISOR_TOKEN nor HASSIO_TOKEN is set.
	ErrNoToken = errors.New("supervisor: no SUPERVISOR_TOKEN: not running as a Home Assistant add-on")
	// ErrNoMQTTService means no add-on provides MQTT.
	ErrNoMQTTService = errors.New("no MQTT service: install the Mosquitto broker add-on or set mqtt.host")
)

// APIError is an answer other than success from the Supervisor.
type APIError struct {
	// Op is the request, e.g. "GET /services/mqtt".
	Op string
	// Status is the HTTP status code.
	Status int
	// Message is the Supervisor's message, or a description of the body
	// when it was not the Supervisor's JSON.
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("supervisor: %s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// Client calls the Supervisor API. The zero HTTP uses a plain client; every
// request is bounded by the context, or by DefaultTimeout without deadline.
type Client struct {
	// BaseURL is the API's address without trailing slash.
	BaseURL string
	// Token is the add-on's SUPERVISOR_TOKEN.
	Token logging.Secret
	// HTTP sends the requests; nil means a client without own timeout.
	HTTP *http.Client
}

// FromEnv builds a client from SUPERVISOR_TOKEN (or the older HASSIO_TOKEN)
// and SUPERVISOR_API (default DefaultBaseURL). Without a token it returns
// ErrNoToken: the gateway runs standalone.
func FromEnv() (*Client, error) {
	token := os.Getenv("SUPERVISOR_TOKEN")
	if token == "" {
		token = os.Getenv("HASSIO_TOKEN")
	}
	if token == "" {
		return nil, ErrNoToken
	}
	base := os.Getenv("SUPERVISOR_API")
	if base == "" {
		base = DefaultBaseURL
	}
	return &Client{BaseURL: strings.TrimRight(base, "/"), Token: logging.Secret(token), HTTP: &http.Client{}}, nil
}

// Service is the MQTT broker the Supervisor hands out.
type Service struct {
	Host     string         `json:"host"`
	Port     int            `json:"port"`
	SSL      bool           `json:"ssl"`
	Username string         `json:"username"`
	Password logging.Secret `json:"password"`
	Protocol string         `json:"protocol"`
	Addon    string         `json:"addon"`
}

// Info is the part of the add-on's own information the gateway uses.
type Info struct {
	// IngressEntry is the path prefix of the status page behind ingress,
	// e.g. "/api/hassio_ingress/<token>".
	IngressEntry string `json:"ingress_entry"`
	// IngressURL is the same for the frontend.
	IngressURL string `json:"ingress_url"`
	// IPAddress is the add-on's address in the Supervisor's network.
	IPAddress string `json:"ip_address"`
	// Version is the installed add-on version.
	Version string `json:"version"`
}

// MQTT asks which broker to use. Without a broker add-on the answer is
// ErrNoMQTTService.
func (c *Client) MQTT(ctx context.Context) (Service, error) {
	const op = "GET /services/mqtt"
	var s serviceWire
	err := c.get(ctx, "/services/mqtt", op, &s)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest &&
		strings.Contains(strings.ToLower(apiErr.Message), "not enabled") {
		return Service{}, ErrNoMQTTService
	}
	if err != nil {
		return Service{}, err
	}
	svc := Service{Host: s.Host, Port: s.Port, SSL: s.SSL, Username: s.Username,
		Password: logging.Secret(s.Password), Protocol: s.Protocol, Addon: s.Addon}
	if svc.Host == "" || svc.Port < 1 || svc.Port > 65535 {
		return Service{}, fmt.Errorf("supervisor: %s: incomplete answer (host %q, port %d)", op, svc.Host, svc.Port)
	}
	return svc, nil
}

// serviceWire is Service as it arrives: the password must be decoded,
// while Service masks it when encoded.
type serviceWire struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	SSL      bool   `json:"ssl"`
	Username string `json:"username"`
	Password string `json:"password"`
	Protocol string `json:"protocol"`
	Addon    string `json:"addon"`
}

// SelfInfo asks for the add-on's own information.
func (c *Client) SelfInfo(ctx context.Context) (Info, error) {
	var info Info
	err := c.get(ctx, "/addons/self/info", "GET /addons/self/info", &info)
	return info, err
}

// envelope is the Supervisor's answer around every result.
type envelope struct {
	Result  string          `json:"result"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// get fetches path and decodes the envelope's data into out.
func (c *Client) get(ctx context.Context, path, op string, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return fmt.Errorf("supervisor: %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+string(c.Token))
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error names the URL, never the header: the token stays out.
		return fmt.Errorf("supervisor: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("supervisor: %s: read answer: %w", op, err)
	}
	if len(body) > maxBody {
		return &APIError{Op: op, Status: resp.StatusCode, Message: fmt.Sprintf("answer larger than %d bytes", maxBody)}
	}

	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Result == "" {
		return &APIError{Op: op, Status: resp.StatusCode, Message: notJSON(resp, body)}
	}
	if resp.StatusCode != http.StatusOK || env.Result != "ok" {
		msg := env.Message
		if msg == "" {
			msg = "result " + quoteShort(env.Result)
		}
		if c.Token != "" {
			msg = strings.ReplaceAll(msg, string(c.Token), c.Token.String())
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			msg += " (is the token valid and does the add-on ask for this API?)"
		}
		return &APIError{Op: op, Status: resp.StatusCode, Message: msg}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("supervisor: %s: unexpected data: %w", op, err)
	}
	return nil
}

// notJSON describes an answer that is not the Supervisor's JSON, such as
// an HTML error page of a proxy.
func notJSON(resp *http.Response, body []byte) string {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "" {
		ct = "no content type"
	}
	if len(body) == 0 {
		return "empty answer"
	}
	return fmt.Sprintf("answer is not the Supervisor's JSON (%s, %d bytes)", ct, len(body))
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}
