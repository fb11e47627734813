//go:build tools

// Package tools pins modules that the project depends on before any code
// imports them, so `go mod tidy` keeps them. It is never built.
package tools

import (
	_ "github.com/anthropics/anthropic-sdk-go/v2"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/openai/openai-go/v3"
	_ "go.yaml.in/yaml/v3"
	_ "modernc.org/sqlite"
)
