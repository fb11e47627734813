package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// DefaultAlertsSince is how far back GET /api/alerts looks without
// ?since= or ?all=1 (as `tokenmeter alerts list` does).
const DefaultAlertsSince = 7 * 24 * time.Hour

// DeliveryJSON is one delivery of an alert as GET /api/alerts/{id} shows
// it (without the payload, which is the alert itself).
type DeliveryJSON struct {
	Sink       string     `json:"sink"`
	Transition string     `json:"transition"`
	Attempts   int        `json:"attempts"`
	Next       *time.Time `json:"next_attempt,omitempty"`
	Delivered  *time.Time `json:"delivered,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
}

func (h *Handler) alertStore() (tokenmeter.AlertStore, error) {
	as, ok := h.Store.(tokenmeter.AlertStore)
	if !ok {
		return nil, &httpError{http.StatusNotImplemented, "not_implemented", "this gateway's store keeps no alerts"}
	}
	return as, nil
}

// alerts serves GET /api/alerts[?since=|?all=1][&state=firing]: the alerts
// fired in the last 7 days (since then; all: every one), newest first,
// with their history — what `tokenmeter alerts list --json` writes.
func (h *Handler) alerts(w http.ResponseWriter, r *http.Request, _ caller) error {
	as, err := h.alertStore()
	if err != nil {
		return err
	}
	q := tokenmeter.AlertQuery{Since: h.now().Add(-DefaultAlertsSince)}
	if v := r.URL.Query().Get("since"); v != "" {
		since, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if since, err = time.Parse("2006-01-02", v); err != nil {
				return &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("since=%q: want an RFC 3339 time or YYYY-MM-DD", v)}
			}
		}
		q.Since = since
	}
	switch v := r.URL.Query().Get("all"); v {
	case "", "0", "false":
	case "1", "true":
		q.Since = time.Time{}
	default:
		return &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("all=%q: want 1 or 0", v)}
	}
	switch v := r.URL.Query().Get("state"); v {
	case "":
	case "firing":
		q.Firing = true
	default:
		return &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("state=%q: the only state filter is firing", v)}
	}
	list, err := as.Alerts(r.Context(), q)
	if err != nil {
		return fmt.Errorf("list alerts: %w", err)
	}
	if list == nil {
		list = []tokenmeter.Alert{}
	}
	writeJSON(w, http.StatusOK, struct {
		Alerts []tokenmeter.Alert `json:"alerts"`
	}{list})
	return nil
}

// alert serves GET /api/alerts/{id}: one alert with its history and the
// state of its deliveries.
func (h *Handler) alert(w http.ResponseWriter, r *http.Request, _ caller) error {
	as, err := h.alertStore()
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("alert id %q is not a positive number", r.PathValue("id"))}
	}
	a, err := as.Alert(r.Context(), id)
	if err != nil {
		return err
	}
	ds, err := as.Deliveries(r.Context(), id)
	if err != nil {
		return fmt.Errorf("list deliveries: %w", err)
	}
	out := struct {
		tokenmeter.Alert
		Deliveries []DeliveryJSON `json:"deliveries"`
	}{Alert: a, Deliveries: []DeliveryJSON{}}
	for _, d := range ds {
		j := DeliveryJSON{Sink: d.Sink, Transition: string(d.Transition), Attempts: d.Attempts, LastError: d.LastError}
		if d.Delivered.IsZero() {
			next := d.Next.UTC()
			j.Next = &next
		} else {
			at := d.Delivered.UTC()
			j.Delivered = &at
		}
		out.Deliveries = append(out.Deliveries, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
