package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/counters"
)

// AnomalyJSON is an anomaly as the API (and anomalies --json) shows it:
// the evidence document inline.
type AnomalyJSON struct {
	ID         int64           `json:"id"`
	Kind       string          `json:"kind"`
	Provider   string          `json:"provider"`
	Credential string          `json:"credential,omitempty"`
	Counter    string          `json:"counter,omitempty"`
	Detected   time.Time       `json:"detected"`
	Start      time.Time       `json:"start"`
	End        time.Time       `json:"end"`
	Summary    string          `json:"summary"`
	Evidence   json.RawMessage `json:"evidence,omitempty"`
}

// ToAnomaly is how the API shows a; withEvidence includes the evidence.
func ToAnomaly(a tokenmeter.Anomaly, withEvidence bool) AnomalyJSON {
	j := AnomalyJSON{ID: a.ID, Kind: a.Kind, Provider: a.Provider, Credential: a.Credential, Counter: a.Counter,
		Detected: a.Detected.UTC(), Start: a.Start.UTC(), End: a.End.UTC(), Summary: a.Summary}
	if withEvidence {
		j.Evidence = a.Evidence
	}
	return j
}

func (h *Handler) counterStore() (tokenmeter.CounterStore, error) {
	cs, ok := h.Store.(tokenmeter.CounterStore)
	if !ok {
		return nil, &httpError{http.StatusNotImplemented, "not_implemented", "this gateway's store keeps no provider counters"}
	}
	return cs, nil
}

// queryTime reads the RFC 3339 time or YYYY-MM-DD date in query parameter
// name; zero when absent.
func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("%s=%q: want an RFC 3339 time or YYYY-MM-DD", name, v)}
}

// anomalies serves GET /api/anomalies[?since=]: the anomalies detected
// since then (default: all), oldest first, without their evidence.
func (h *Handler) anomalies(w http.ResponseWriter, r *http.Request, _ caller) error {
	cs, err := h.counterStore()
	if err != nil {
		return err
	}
	since, err := queryTime(r, "since")
	if err != nil {
		return err
	}
	list, err := cs.Anomalies(r.Context(), since)
	if err != nil {
		return fmt.Errorf("list anomalies: %w", err)
	}
	out := struct {
		Anomalies []AnomalyJSON `json:"anomalies"`
	}{Anomalies: []AnomalyJSON{}}
	for _, a := range list {
		out.Anomalies = append(out.Anomalies, ToAnomaly(a, false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// anomaly serves GET /api/anomalies/{id}: one anomaly with its evidence.
func (h *Handler) anomaly(w http.ResponseWriter, r *http.Request, _ caller) error {
	cs, err := h.counterStore()
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return &httpError{http.StatusBadRequest, "invalid", "an anomaly id is a positive integer"}
	}
	a, err := cs.Anomaly(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ToAnomaly(a, true))
	return nil
}

// maxCounterSamples bounds the samples one GET /api/counters returns.
const maxCounterSamples = 10000

// counterSamples serves GET /api/counters[?provider=&credential=&counter=&since=&until=&limit=]:
// the stored samples of the provider counters, oldest first, the latest
// limit (default and at most 10,000) of them.
func (h *Handler) counterSamples(w http.ResponseWriter, r *http.Request, _ caller) error {
	cs, err := h.counterStore()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	sq := tokenmeter.SampleQuery{Provider: q.Get("provider"), Credential: q.Get("credential"), Counter: q.Get("counter"), Limit: maxCounterSamples}
	if sq.Since, err = queryTime(r, "since"); err != nil {
		return err
	}
	if sq.Until, err = queryTime(r, "until"); err != nil {
		return err
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > maxCounterSamples {
			return &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("limit=%q: want 1 to %d", v, maxCounterSamples)}
		}
		sq.Limit = n
	}
	samples, err := cs.Samples(r.Context(), sq)
	if err != nil {
		return fmt.Errorf("list counter samples: %w", err)
	}
	out := struct {
		Samples []counters.SampleView `json:"samples"`
	}{Samples: counters.Views(samples)}
	writeJSON(w, http.StatusOK, out)
	return nil
}
