package admin

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tokenmeter/tokenmeter"
)

// DefaultReconcileRuns is how many runs GET /api/reconcile lists without
// ?limit=.
const DefaultReconcileRuns = 50

func (h *Handler) reconcileStore() (tokenmeter.ReconcileStore, error) {
	rs, ok := h.Store.(tokenmeter.ReconcileStore)
	if !ok {
		return nil, &httpError{http.StatusNotImplemented, "not_implemented", "this gateway's store keeps no reconciliation runs"}
	}
	return rs, nil
}

// reconcileRuns serves GET /api/reconcile[?provider=anthropic][&limit=N]:
// the stored reconciliation runs (serve --reconcile), newest first,
// without their discrepancies — what `tokenmeter reconcile history
// --json` writes.
func (h *Handler) reconcileRuns(w http.ResponseWriter, r *http.Request, _ caller) error {
	rs, err := h.reconcileStore()
	if err != nil {
		return err
	}
	limit := DefaultReconcileRuns
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10_000 {
			return &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("limit=%q: want 1 to 10000", v)}
		}
		limit = n
	}
	runs, err := rs.ReconcileRuns(r.Context(), r.URL.Query().Get("provider"), limit)
	if err != nil {
		return fmt.Errorf("list reconcile runs: %w", err)
	}
	if runs == nil {
		runs = []tokenmeter.ReconcileRun{}
	}
	for i := range runs {
		runs[i].Discrepancies = nil
	}
	writeJSON(w, http.StatusOK, struct {
		Runs []tokenmeter.ReconcileRun `json:"runs"`
	}{runs})
	return nil
}

// reconcileRun serves GET /api/reconcile/{id}: one run with its
// discrepancies, largest first.
func (h *Handler) reconcileRun(w http.ResponseWriter, r *http.Request, _ caller) error {
	rs, err := h.reconcileStore()
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return &httpError{http.StatusBadRequest, "invalid", fmt.Sprintf("run id %q: want a positive integer", r.PathValue("id"))}
	}
	run, err := rs.ReconcileRun(r.Context(), id)
	if err != nil {
		return err
	}
	if run.Discrepancies == nil {
		run.Discrepancies = []tokenmeter.Discrepancy{}
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}
