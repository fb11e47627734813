package fakeupstream

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"

	"github.com/tokenmeter/tokenmeter"
)

// OpenAI Embeddings (POST /v1/embeddings): one vector per input (a string,
// an array of strings, an array of token ids or an array of such arrays; at
// most MaxEmbeddingInputs), of the request's dimensions or
// DefaultEmbeddingDimensions (3072 for a model named
// text-embedding-3-large), as floats or, with encoding_format "base64",
// as base64 of little-endian float32s (inputs × dimensions at most
// MaxEmbeddingComponents). usage has prompt_tokens =
// total_tokens = the input tokens (the input directive, else
// InputTokens(body)), which is also what the call bills.

// Embeddings limits and defaults.
const (
	MaxEmbeddingInputs         = 2048
	DefaultEmbeddingDimensions = 1536
	MaxEmbeddingDimensions     = 4096
	// MaxEmbeddingComponents bounds inputs × dimensions of one reply
	// (a fake's limit, to bound its memory): more is a 400.
	MaxEmbeddingComponents = 1 << 21
)

type embeddingPlan struct {
	model  string
	inputs int
	dims   int
	base64 bool
	input  int64
}

func (p embeddingPlan) usage() tokenmeter.Usage { return tokenmeter.Usage{InputTokens: p.input} }

// planEmbeddings validates an embeddings request.
func planEmbeddings(body []byte, d directives) (embeddingPlan, error) {
	if _, err := decodeRequest(body); err != nil {
		return embeddingPlan{}, err
	}
	var req struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		Dimensions     *int64          `json:"dimensions"`
		EncodingFormat string          `json:"encoding_format"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return embeddingPlan{}, invalidRequest("invalid request body: %v", err)
	}
	if req.Model == "" {
		return embeddingPlan{}, invalidRequest("model: Field required")
	}
	p := embeddingPlan{model: req.Model, dims: DefaultEmbeddingDimensions, input: InputTokens(body)}
	if req.Model == "text-embedding-3-large" {
		p.dims = 3072
	}
	if d.input >= 0 {
		p.input = d.input
	}
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > MaxEmbeddingDimensions {
			return embeddingPlan{}, invalidRequest("dimensions: must be between 1 and %d", MaxEmbeddingDimensions)
		}
		p.dims = int(*req.Dimensions)
	}
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		p.base64 = true
	default:
		return embeddingPlan{}, invalidRequest("encoding_format: want float or base64, got %q", req.EncodingFormat)
	}
	n, err := countEmbeddingInputs(req.Input)
	if err != nil {
		return embeddingPlan{}, err
	}
	p.inputs = n
	if n*p.dims > MaxEmbeddingComponents {
		return embeddingPlan{}, invalidRequest("fake-upstream: %d inputs of %d dimensions exceed %d vector components", n, p.dims, MaxEmbeddingComponents)
	}
	return p, nil
}

// countEmbeddingInputs returns the number of inputs of an embeddings
// request's input member.
func countEmbeddingInputs(raw json.RawMessage) (int, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return 0, invalidRequest("input: cannot be an empty string")
		}
		return 1, nil
	}
	var strs []string
	var tokens []int64
	var lists [][]int64
	n := 0
	switch {
	case json.Unmarshal(raw, &strs) == nil:
		for _, s := range strs {
			if s == "" {
				return 0, invalidRequest("input: cannot contain an empty string")
			}
		}
		n = len(strs)
	case json.Unmarshal(raw, &tokens) == nil:
		n = min(len(tokens), 1) // one input of token ids
	case json.Unmarshal(raw, &lists) == nil:
		for _, l := range lists {
			if len(l) == 0 {
				return 0, invalidRequest("input: cannot contain an empty array")
			}
		}
		n = len(lists)
	default:
		return 0, invalidRequest("input: want a string, an array of strings, or token arrays")
	}
	if n == 0 {
		return 0, invalidRequest("input: cannot be empty")
	}
	if n > MaxEmbeddingInputs {
		return 0, invalidRequest("input: at most %d inputs", MaxEmbeddingInputs)
	}
	return n, nil
}

// embeddingValue returns component i of input k's vector: deterministic,
// in [-1, 1].
func embeddingValue(k, i int) float32 {
	return float32((k*7919+i*104729)%2001-1000) / 1000
}

// handleEmbeddings serves POST /v1/embeddings.
func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request, c *call) error {
	p, err := planEmbeddings(c.body, c.dir)
	if err != nil {
		return err
	}
	c.model, c.usage = p.model, p.usage()
	c.inputTokens = p.input
	c.planned, c.billPlan = true, c.usage
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	data := make([]item, p.inputs)
	for k := range data {
		vec := make([]float32, p.dims)
		for i := range vec {
			vec[i] = embeddingValue(k, i)
		}
		data[k] = item{Object: "embedding", Index: k, Embedding: vec}
		if p.base64 {
			buf := make([]byte, 4*len(vec))
			for i, v := range vec {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			data[k].Embedding = base64.StdEncoding.EncodeToString(buf)
		}
	}
	type usage struct {
		PromptTokens int64 `json:"prompt_tokens"`
		TotalTokens  int64 `json:"total_tokens"`
	}
	return s.writeBody(w, r, c, struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  usage  `json:"usage"`
	}{"list", data, p.model, usage{p.input, p.input}})
}
