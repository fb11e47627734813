package fakeupstream

import (
	"net/http"
	"time"
)

// model is one entry of the model lists.
type model struct {
	id, name string
	created  time.Time
}

var anthropicModels = []model{
	{"claude-opus-5-5", "Claude Opus 5.5", time.Date(2026, 9, 23, 0, 0, 0, 0, time.UTC)},
	{"claude-sonnet-5-5", "Claude Sonnet 5.5", time.Date(2026, 9, 28, 0, 0, 0, 0, time.UTC)},
	{"claude-haiku-5-5", "Claude Haiku 5.5", time.Date(2026, 10, 7, 0, 0, 0, 0, time.UTC)},
	{"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", time.Date(2025, 9, 29, 0, 0, 0, 0, time.UTC)},
}

var openAIModels = []model{
	{"gpt-6.1-sol", "", time.Date(2026, 9, 29, 0, 0, 0, 0, time.UTC)},
	{"gpt-6-luna", "", time.Date(2026, 9, 22, 0, 0, 0, 0, time.UTC)},
	{"gpt-5.4", "", time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
	{"gpt-5.4-mini", "", time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
}

// handleModels serves GET /v1/models in the shape of the provider the
// request's headers name.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := sleep(r.Context(), c.dir.ttfb+c.dir.delay); err != nil {
		return err
	}
	if c.provider == providerAnthropic {
		type info struct {
			Type        string `json:"type"`
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
			CreatedAt   string `json:"created_at"`
		}
		list := struct {
			Data    []info `json:"data"`
			HasMore bool   `json:"has_more"`
			FirstID string `json:"first_id"`
			LastID  string `json:"last_id"`
		}{FirstID: anthropicModels[0].id, LastID: anthropicModels[len(anthropicModels)-1].id}
		for _, m := range anthropicModels {
			list.Data = append(list.Data, info{Type: "model", ID: m.id, DisplayName: m.name, CreatedAt: m.created.Format(time.RFC3339)})
		}
		s.writeJSON(w, c, http.StatusOK, list)
		return nil
	}
	type info struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string `json:"object"`
		Data   []info `json:"data"`
	}{Object: "list"}
	for _, m := range openAIModels {
		list.Data = append(list.Data, info{ID: m.id, Object: "model", Created: m.created.Unix(), OwnedBy: "openai"})
	}
	s.writeJSON(w, c, http.StatusOK, list)
	return nil
}
