package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/status"
)

// Key is a virtual key as the API (and keys list --json) shows it. Key is
// the secret, present only in the answers to create and rotate.
type Key struct {
	Name    string `json:"name"`
	Key     string `json:"key,omitempty"`
	Prefix  string `json:"prefix"`
	Project string `json:"project"`
	Created string `json:"created"`
	Expires string `json:"expires,omitempty"`
	Revoked string `json:"revoked,omitempty"`
	Rotated string `json:"rotated,omitempty"`
	Status  string `json:"status"`
}

// ToKey is how the API and `keys list --json` show v at now.
func ToKey(v tokenmeter.VirtualKey, now time.Time) Key {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	return Key{Name: v.Name, Prefix: v.Prefix, Project: v.Project, Created: ts(v.Created), Expires: ts(v.Expires),
		Revoked: ts(v.Revoked), Rotated: ts(v.Rotated), Status: v.Status(now)}
}

// listKeys serves GET /api/keys: every key, revoked ones included, never
// a secret or a hash.
func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request, _ caller) error {
	keys, err := h.Store.Keys(r.Context())
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	out := struct {
		Keys []Key `json:"keys"`
	}{Keys: []Key{}}
	now := h.now()
	for _, k := range keys {
		out.Keys = append(out.Keys, ToKey(k, now))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createRequest is the body of POST /api/keys.
type createRequest struct {
	Name    string `json:"name"`
	Project string `json:"project"`
	// Expires is YYYY-MM-DD (00:00 UTC) or an RFC 3339 time.
	Expires string `json:"expires"`
}

// createKey serves POST /api/keys: it creates a key and answers 201 with
// its secret, the one time it is shown.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req createRequest
	if err := h.decode(w, r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "name is required")
	}
	if err := tokenmeter.ValidateKeyName(req.Name); err != nil {
		return err
	}
	if err := tokenmeter.ValidateProject(req.Project); err != nil {
		return err
	}
	now := h.now().UTC()
	var exp time.Time
	if req.Expires != "" {
		var err error
		if exp, err = tokenmeter.ParseKeyExpiry(req.Expires); err != nil {
			return err
		}
		if !exp.After(now) {
			return tokenmeter.Errorf(tokenmeter.EINVALID, "expires %s is in the past", exp.Format(time.RFC3339))
		}
	}
	secret := tokenmeter.NewKeySecret()
	v := tokenmeter.VirtualKey{Name: req.Name, Prefix: tokenmeter.KeyDisplayPrefix(secret), Hash: tokenmeter.HashKey(secret),
		Project: req.Project, Created: now, Expires: exp}
	if err := h.Store.CreateKey(r.Context(), v); err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	k := ToKey(v, now)
	k.Key = secret
	writeJSON(w, http.StatusCreated, k)
	return nil
}

// keyNamed returns the key called name, ENOTFOUND if there is none.
func (h *Handler) keyNamed(ctx context.Context, name string) (tokenmeter.VirtualKey, error) {
	if err := tokenmeter.ValidateKeyName(name); err != nil {
		return tokenmeter.VirtualKey{}, err
	}
	keys, err := h.Store.Keys(ctx)
	if err != nil {
		return tokenmeter.VirtualKey{}, fmt.Errorf("list keys: %w", err)
	}
	for _, k := range keys {
		if k.Name == name {
			return k, nil
		}
	}
	return tokenmeter.VirtualKey{}, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no virtual key named %q", name)
}

// revokeKey serves POST /api/keys/{name}/revoke.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, _ caller) error {
	name := r.PathValue("name")
	if err := tokenmeter.ValidateKeyName(name); err != nil {
		return err
	}
	now := h.now().UTC()
	if err := h.Store.RevokeKey(r.Context(), name, now); err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	k, err := h.keyNamed(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ToKey(k, now))
	return nil
}

// rotateKey serves POST /api/keys/{name}/rotate: the old secret stops
// working and the new one is answered, the one time it is shown.
func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request, _ caller) error {
	name := r.PathValue("name")
	if err := tokenmeter.ValidateKeyName(name); err != nil {
		return err
	}
	now := h.now().UTC()
	secret := tokenmeter.NewKeySecret()
	if err := h.Store.RotateKey(r.Context(), name, tokenmeter.HashKey(secret), tokenmeter.KeyDisplayPrefix(secret), now); err != nil {
		return fmt.Errorf("rotate key: %w", err)
	}
	v, err := h.keyNamed(r.Context(), name)
	if err != nil {
		return err
	}
	k := ToKey(v, now)
	k.Key = secret
	writeJSON(w, http.StatusOK, k)
	return nil
}

// decode reads a JSON body into v, refusing unknown fields and bodies
// over MaxBody.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	max := h.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return tokenmeter.Errorf(tokenmeter.ETOOLARGE, "request body over %d bytes", max)
		case errors.Is(err, io.EOF):
			return tokenmeter.Errorf(tokenmeter.EINVALID, "request body must be a JSON object")
		}
		// Told in the API's terms: the field and what it takes, never a
		// Go type.
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		var te *tokenmeter.Error
		switch {
		case errors.As(err, &te):
			return te
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %s wants %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind()), typeErr.Value)
		case errors.As(err, &typeErr):
			return tokenmeter.Errorf(tokenmeter.EINVALID, "request body must be a JSON object, not a JSON %s", typeErr.Value)
		case errors.As(err, &syntaxErr):
			return tokenmeter.Errorf(tokenmeter.EINVALID, "request body is not valid JSON (at byte %d)", syntaxErr.Offset)
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		return tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %s", msg)
	}
	if dec.More() {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "request body must be one JSON object")
	}
	return nil
}

// jsonKind says what a value of Go kind k is in JSON, for messages.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// reportQuery reads kind, since, until, by and tz as tokenmeter report
// takes them.
func (h *Handler) reportQuery(v url.Values) (report.Query, error) {
	for name := range v {
		switch name {
		case "kind", "since", "until", "by", "tz":
		default:
			return report.Query{}, tokenmeter.Errorf(tokenmeter.EINVALID, "unknown parameter %q (want kind, since, until, by, tz)", name)
		}
	}
	loc, err := h.zone(v.Get("tz"))
	if err != nil {
		return report.Query{}, err
	}
	q := report.Query{Kind: v.Get("kind"), By: v.Get("by"), Loc: loc}
	if q.Kind == "" {
		q.Kind = report.Daily
	}
	if s := v.Get("since"); s != "" {
		if q.Since, err = report.ParseDate(s, loc); err != nil {
			return report.Query{}, err
		}
	}
	if s := v.Get("until"); s != "" {
		if q.Until, err = report.ParseDate(s, loc); err != nil {
			return report.Query{}, err
		}
	}
	return q, nil
}

func (h *Handler) zone(name string) (*time.Location, error) {
	if name == "" {
		return h.loc(), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "unknown time zone %q", name)
	}
	return loc, nil
}

// usage serves GET /api/usage?kind=&since=&until=&by=&tz=: the report
// data, in the JSON of tokenmeter report --json.
func (h *Handler) usage(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := h.reportQuery(r.URL.Query())
	if err != nil {
		return err
	}
	rep, err := report.Build(r.Context(), h.Store, q, h.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// status serves GET /api/status?tz=: the live view of tokenmeter status
// --json.
func (h *Handler) status(w http.ResponseWriter, r *http.Request, _ caller) error {
	for name := range r.URL.Query() {
		if name != "tz" {
			return tokenmeter.Errorf(tokenmeter.EINVALID, "unknown parameter %q (want tz)", name)
		}
	}
	loc, err := h.zone(r.URL.Query().Get("tz"))
	if err != nil {
		return err
	}
	st, err := (&status.Reader{Store: h.Store, Loc: loc}).Read(r.Context(), h.now(), true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// meResponse is the answer of /api/me.
type meResponse struct {
	Key   Key            `json:"key"`
	Usage *report.Report `json:"usage"`
	// Limits are the limits that apply to the key's calls; absent when the
	// gateway has no limits.
	Limits []Limit `json:"limits,omitempty"`
}

// me serves GET /api/me?kind=&since=&until=&by=&tz= for a virtual key:
// the key itself, the report data of its own calls only, and the limits
// that apply to it (see keyLimits).
func (h *Handler) me(w http.ResponseWriter, r *http.Request, c caller) error {
	q, err := h.reportQuery(r.URL.Query())
	if err != nil {
		return err
	}
	own := principalUsage{store: h.Store, principal: "key:" + c.key.Name}
	rep, err := report.Build(r.Context(), own, q, h.now())
	if err != nil {
		return err
	}
	ls, err := h.keyLimits(r.Context(), c.key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, meResponse{Key: ToKey(c.key, h.now()), Usage: rep, Limits: ls})
	return nil
}

// principalUsage is a usage source holding only one principal's buckets.
type principalUsage struct {
	store     Store
	principal string
}

func (p principalUsage) Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error) {
	all, err := p.store.Usage(ctx, q)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, b := range all {
		if b.Principal == p.principal {
			out = append(out, b)
		}
	}
	return out, nil
}
