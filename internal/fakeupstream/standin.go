package fakeupstream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

// Stand-ins: OpenAI endpoints a gateway must not record as free, answered
// plausibly and cheaply with NO usage object, while the fake bills them
// (billing.go) this documented amount:
//
//	input tokens   the input directive, else InputTokens(body) (the decoded body,
//	               the whole multipart body for transcriptions)
//	output tokens  units × (the output directive, else DefaultOutputTokens),
//	               units being n for images (default 1), 1 for the others
//
// priced under the request's model (batches name none, so their cost is
// unknown). The routes:
//
//	POST /v1/images/generations    {"created":T,"data":[{"url":...} or {"b64_json":...}, ×n]};
//	                               prompt required, model default dall-e-2, n 1..10,
//	                               response_format url (default; gpt-image-* always b64_json) or b64_json
//	POST /v1/audio/speech          audio bytes (mp3 default; response_format opus, aac, flac, wav, pcm);
//	                               model and input required
//	POST /v1/audio/transcriptions  multipart/form-data with file and model; {"text":...} (json, default),
//	                               verbose_json, or text, srt, vtt as text/plain
//	POST /v1/batches               a Batch object, status "validating"; input_file_id, endpoint and
//	                               completion_window required
//
// Their text is OutputText(output tokens).

// standIn is one stand-in route.
type standIn struct {
	// plan validates a request and returns what it bills and its reply.
	plan func(body []byte, contentType string, d directives) (standInPlan, error)
}

type standInPlan struct {
	model       string
	billed      tokenmeter.Usage
	contentType string
	reply       func(c *call) []byte
}

// standIns are the stand-in routes by path.
var standIns = map[string]standIn{
	"/v1/images/generations":   {plan: planImages},
	"/v1/audio/speech":         {plan: planSpeech},
	"/v1/audio/transcriptions": {plan: planTranscription},
	"/v1/batches":              {plan: planBatch},
}

// standInBilled returns the amount a stand-in bills for units.
func standInBilled(body []byte, d directives, units int64) tokenmeter.Usage {
	u := tokenmeter.Usage{InputTokens: InputTokens(body), OutputTokens: DefaultOutputTokens * units}
	if d.input >= 0 {
		u.InputTokens = d.input
	}
	if d.output >= 0 {
		u.OutputTokens = d.output * units
	}
	return u
}

// words returns the words of a stand-in's text.
func (p standInPlan) words() int { return int(min(p.billed.OutputTokens, MaxOutputTokens)) }

// handleStandIn serves a stand-in route.
func (s *Server) handleStandIn(sp standIn) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p, err := sp.plan(c.body, r.Header.Get("Content-Type"), c.dir)
		if err != nil {
			return err
		}
		c.model = p.model
		c.inputTokens, c.outputTokens = p.billed.InputTokens, p.billed.OutputTokens
		c.planned, c.billPlan = true, p.billed // c.usage stays zero: no usage is reported
		return s.writeRaw(w, r, c, p.contentType, p.reply(c))
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeupstream: marshal %T: %v", v, err)) // our own types always marshal
	}
	return b
}

// tinyPNG is a 1×1 transparent PNG, the image of every b64_json reply.
var tinyPNG = func() []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 1, 1))); err != nil {
		panic(err) // encoding to memory does not fail
	}
	return buf.Bytes()
}()

func planImages(body []byte, _ string, d directives) (standInPlan, error) {
	if _, err := decodeRequest(body); err != nil {
		return standInPlan{}, err
	}
	var req struct {
		Model          string `json:"model"`
		Prompt         string `json:"prompt"`
		N              *int64 `json:"n"`
		ResponseFormat string `json:"response_format"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return standInPlan{}, invalidRequest("invalid request body: %v", err)
	}
	if req.Prompt == "" {
		return standInPlan{}, invalidRequest("prompt: Field required")
	}
	if req.Model == "" {
		req.Model = "dall-e-2"
	}
	n := int64(1)
	if req.N != nil {
		if *req.N < 1 || *req.N > 10 {
			return standInPlan{}, invalidRequest("n: must be between 1 and 10")
		}
		n = *req.N
	}
	b64 := strings.HasPrefix(req.Model, "gpt-image")
	switch req.ResponseFormat {
	case "", "url":
	case "b64_json":
		b64 = true
	default:
		return standInPlan{}, invalidRequest("response_format: want url or b64_json, got %q", req.ResponseFormat)
	}
	return standInPlan{
		model: req.Model, billed: standInBilled(body, d, n), contentType: "application/json",
		reply: func(c *call) []byte {
			type image struct {
				URL           string  `json:"url,omitempty"`
				B64JSON       string  `json:"b64_json,omitempty"`
				RevisedPrompt *string `json:"revised_prompt"`
			}
			data := make([]image, n)
			for k := range data {
				if b64 {
					data[k].B64JSON = base64.StdEncoding.EncodeToString(tinyPNG)
				} else {
					data[k].URL = "https://fake-upstream.invalid/images/img_" + c.id + "_" + strconv.Itoa(k) + ".png"
				}
			}
			return mustJSON(struct {
				Created int64   `json:"created"`
				Data    []image `json:"data"`
			}{c.start.Unix(), data})
		},
	}, nil
}

// speechTypes are the content types of the speech formats.
var speechTypes = map[string]string{
	"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
	"flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm",
}

func planSpeech(body []byte, _ string, d directives) (standInPlan, error) {
	if _, err := decodeRequest(body); err != nil {
		return standInPlan{}, err
	}
	var req struct {
		Model          string `json:"model"`
		Input          string `json:"input"`
		ResponseFormat string `json:"response_format"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return standInPlan{}, invalidRequest("invalid request body: %v", err)
	}
	switch {
	case req.Model == "":
		return standInPlan{}, invalidRequest("model: Field required")
	case req.Input == "":
		return standInPlan{}, invalidRequest("input: Field required")
	}
	format := req.ResponseFormat
	if format == "" {
		format = "mp3"
	}
	ct, ok := speechTypes[format]
	if !ok {
		return standInPlan{}, invalidRequest("response_format: want mp3, opus, aac, flac, wav or pcm, got %q", format)
	}
	p := standInPlan{model: req.Model, billed: standInBilled(body, d, 1), contentType: ct}
	p.reply = func(*call) []byte {
		// Not playable audio: a format tag and filler, 64 bytes a word.
		out := append([]byte("fake-upstream "+format+" audio\n"), bytes.Repeat([]byte{0x55}, 64*p.words())...)
		return out
	}
	return p, nil
}

// multipartBoundary returns the boundary of a multipart body: from its
// content type, or without one from the body's first line.
func multipartBoundary(contentType string, body []byte) string {
	if contentType != "" {
		mt, params, err := mime.ParseMediaType(contentType)
		if err != nil || mt != "multipart/form-data" {
			return ""
		}
		return params["boundary"]
	}
	line, _, _ := bytes.Cut(body, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if !bytes.HasPrefix(line, []byte("--")) {
		return ""
	}
	return string(line[2:])
}

func planTranscription(body []byte, contentType string, d directives) (standInPlan, error) {
	boundary := multipartBoundary(contentType, body)
	if boundary == "" {
		return standInPlan{}, invalidRequest("request body must be multipart/form-data with a file and a model")
	}
	fields := map[string]string{}
	hasFile := false
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return standInPlan{}, invalidRequest("invalid multipart body: %v", err)
		}
		if part.FormName() == "file" {
			hasFile = true
			continue // NextPart skips its content
		}
		v, err := io.ReadAll(io.LimitReader(part, 1<<10))
		if err != nil {
			return standInPlan{}, invalidRequest("invalid multipart body: %v", err)
		}
		fields[part.FormName()] = string(v)
	}
	switch {
	case !hasFile:
		return standInPlan{}, invalidRequest("file: Field required")
	case fields["model"] == "":
		return standInPlan{}, invalidRequest("model: Field required")
	}
	format := fields["response_format"]
	p := standInPlan{model: fields["model"], billed: standInBilled(body, d, 1), contentType: "application/json"}
	switch format {
	case "", "json", "verbose_json":
	case "text", "srt", "vtt":
		p.contentType = "text/plain; charset=utf-8"
	default:
		return standInPlan{}, invalidRequest("response_format: want json, text, srt, verbose_json or vtt, got %q", format)
	}
	p.reply = func(*call) []byte {
		text := OutputText(p.words())
		switch format {
		case "text":
			return []byte(text + "\n")
		case "srt":
			return []byte("1\n00:00:00,000 --> 00:00:01,000\n" + text + "\n\n")
		case "vtt":
			return []byte("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n" + text + "\n\n")
		case "verbose_json":
			return mustJSON(map[string]any{"task": "transcribe", "language": "english", "duration": 1.0, "text": text, "segments": []any{}})
		}
		return mustJSON(map[string]string{"text": text})
	}
	return p, nil
}

func planBatch(body []byte, _ string, d directives) (standInPlan, error) {
	if _, err := decodeRequest(body); err != nil {
		return standInPlan{}, err
	}
	var req struct {
		InputFileID      string            `json:"input_file_id"`
		Endpoint         string            `json:"endpoint"`
		CompletionWindow string            `json:"completion_window"`
		Metadata         map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return standInPlan{}, invalidRequest("invalid request body: %v", err)
	}
	for name, v := range map[string]string{"input_file_id": req.InputFileID, "endpoint": req.Endpoint, "completion_window": req.CompletionWindow} {
		if v == "" {
			return standInPlan{}, invalidRequest("%s: Field required", name)
		}
	}
	return standInPlan{
		billed: standInBilled(body, d, 1), contentType: "application/json",
		reply: func(c *call) []byte {
			return mustJSON(map[string]any{
				"id": "batch_" + c.id, "object": "batch", "endpoint": req.Endpoint, "errors": nil,
				"input_file_id": req.InputFileID, "completion_window": req.CompletionWindow, "status": "validating",
				"output_file_id": nil, "error_file_id": nil, "created_at": c.start.Unix(), "in_progress_at": nil,
				"expires_at": c.start.Unix() + 24*3600, "finalizing_at": nil, "completed_at": nil, "failed_at": nil,
				"expired_at": nil, "cancelling_at": nil, "cancelled_at": nil,
				"request_counts": map[string]int{"total": 0, "completed": 0, "failed": 0}, "metadata": req.Metadata,
			})
		},
	}, nil
}
