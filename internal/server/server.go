// Package server is tokenmeter's one HTTP server: it mounts the metering
// gateway, the health endpoint, the admin API, the dashboard and
// /metrics, with timeouts fit for long streams, and shuts down gracefully.
//
// Every route is listed in routes(). Unknown routes get a JSON 404.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults for Server's tuning fields.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
)

// Gateway is the metering proxy as the server sees it.
type Gateway interface {
	http.Handler
	Handles(path string) bool
}

// Health reports the state of the ledger for /healthz.
type Health interface {
	Healthy() bool
	LastError() error
	QueueDepth() int
}

// Server serves the gateway and tokenmeter's own endpoints.
type Server struct {
	// Addr is the address to listen on, e.g. "127.0.0.1:8787".
	Addr string
	// Gateway serves every path it Handles.
	Gateway Gateway
	// Health feeds /healthz; nil reports ok.
	Health Health
	// Prefixes lists the gateway's route prefixes, for the 404 message.
	Prefixes []string
	// Admin serves the admin API under /api/ (it authenticates requests
	// itself); nil leaves /api/ unrouted.
	Admin http.Handler
	// Dashboard serves / and /ui/* (it authenticates requests itself);
	// nil leaves them unrouted.
	Dashboard http.Handler
	// Metrics serves GET /metrics; nil leaves it unrouted.
	Metrics http.Handler
	// TLSCert and TLSKey, both set, make the server speak HTTPS.
	TLSCert, TLSKey string
	// PublicNames are the host names, besides loopback ones and IP
	// addresses, under which the dashboard, /api and /metrics answer (see
	// HostAllowed). The gateway routes answer under any name.
	PublicNames []string

	log *slog.Logger
	ln  net.Listener
	srv *http.Server
}

// New returns a Server logging to log.
func New(log *slog.Logger) *Server { return &Server{log: log} }

// Open listens on Addr and serves in the background until Close. A port
// clash is an error here, at start-up.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		// No WriteTimeout: a streamed LLM response can last many minutes.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, s.srv.TLSConfig)
		s.ln = ln
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// URL returns the base URL clients on this machine reach the server at:
// the address it listens on, with loopback (127.0.0.1) in place of an
// unspecified address (":8787" listens on every interface, and
// "http://[::]:8787" is no URL to give a client).
func (s *Server) URL() string {
	addr := s.ln.Addr().String()
	if ta, ok := s.ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	}
	if s.TLSCert != "" {
		return "https://" + addr
	}
	return "http://" + addr
}

// Close stops accepting requests and waits, until ctx ends, for in-flight
// requests (streams included) to finish. Connections still open then are
// closed, which ends their handlers (the gateway records those calls as
// cancelled); Close reports that it had to cut them.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		return fmt.Errorf("in-flight requests cut at shutdown: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	if s.Admin != nil {
		mux.Handle("/api/", s.ownHost(s.Admin))
	}
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.ownHost(s.Metrics))
	}
	if s.Dashboard != nil {
		mux.Handle("GET /{$}", s.ownHost(s.Dashboard))
		mux.Handle("/ui/", s.ownHost(s.Dashboard))
	}
	mux.HandleFunc("/", s.handleRest)
	return mux
}

// ownHost guards tokenmeter's own pages and API against DNS rebinding: a
// web page on evil.example whose name an attacker re-points at 127.0.0.1
// reaches this server from the victim's browser as a same-origin request,
// with "Host: evil.example". Only requests for a name the server answers
// to (HostAllowed) are served; others get 421 Misdirected Request.
func (s *Server) ownHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !HostAllowed(r.Host, s.PublicNames) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]any{"error": map[string]string{
				"type": "misdirected_request",
				"message": fmt.Sprintf("this tokenmeter serves its dashboard, /api and /metrics under loopback names, IP addresses "+
					"and its configured public names only, not %q; add the name with serve --public-name (config public_names)", clip(r.Host, 100)),
			}})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// HostAllowed reports whether host (a request's Host: name or address,
// with or without a port) is one the dashboard, /api and /metrics answer
// to: localhost and names under .localhost (browsers resolve them to
// loopback themselves, RFC 6761), an IP address (a rebinding attack
// always presents the attacker's name, never an address), or one of
// public (compared without case and trailing dot).
func HostAllowed(host string, public []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")), ".")
	if host == "" {
		return false
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, p := range public {
		if strings.TrimSuffix(strings.ToLower(p), ".") == host {
			return true
		}
	}
	return false
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// handleRest sends gateway paths to the gateway and answers anything else
// with a JSON 404.
func (s *Server) handleRest(w http.ResponseWriter, r *http.Request) {
	if s.Gateway != nil && s.Gateway.Handles(r.URL.Path) {
		s.Gateway.ServeHTTP(w, r)
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{
		"type":    "not_found",
		"message": fmt.Sprintf("no route for %s %s; tokenmeter serves %v, %s", r.Method, r.URL.Path, s.Prefixes, s.own()),
	}})
}

// own lists tokenmeter's own routes, for the 404 message.
func (s *Server) own() string {
	own := "/healthz"
	if s.Metrics != nil {
		own += ", /metrics"
	}
	if s.Admin != nil {
		own += ", /api/*"
	}
	if s.Dashboard != nil {
		own += ", / (dashboard)"
	}
	return own
}

// handleHealth serves GET /healthz: 200 when the ledger records, 503 when
// it cannot.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	body := map[string]any{}
	if s.Health != nil {
		body["ledger_queue"] = s.Health.QueueDepth()
		if !s.Health.Healthy() {
			status, code = "ledger_unavailable", http.StatusServiceUnavailable
			if err := s.Health.LastError(); err != nil {
				body["error"] = err.Error()
			}
		}
	}
	body["status"] = status
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
