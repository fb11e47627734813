package main

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reading the config file: the YAML is decoded into a node tree first and
// walked beside the Config type, so that every problem is told in the
// file's own terms (its line, the key's path such as alerts.rules[0].kind,
// and for a misspelt key the nearest known one), never in Go's ("field
// lisen not found in type main.Config").

// configProblem is one problem of a config file, at a line.
type configProblem struct {
	line int
	msg  string
}

// decodeConfig decodes the YAML document b over c. Every problem found is
// reported, each on a line of its own.
func decodeConfig(b []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return errors.New(yamlSyntax(err))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file: the defaults
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	var probs []configProblem
	checkNode(root, reflect.TypeOf(c).Elem(), "", &probs)
	if len(probs) > 0 {
		lines := make([]string, len(probs))
		for i, p := range probs {
			lines[i] = fmt.Sprintf("line %d: %s", p.line, p.msg)
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	if err := root.Decode(c); err != nil {
		return errors.New(yamlSyntax(err)) // not expected: checkNode tried every value
	}
	return nil
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
)

// checkNode checks n against the type t at path, appending what is wrong.
func checkNode(n *yaml.Node, t reflect.Type, path string, probs *[]configProblem) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default
	}
	where := func() string {
		if path == "" {
			return "the file"
		}
		return "`" + path + "`"
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(textUnmarshaler) || pt.Implements(yamlUnmarshaler) {
		checkScalar(n, t, path, probs)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*probs = append(*probs, configProblem{n.Line, fmt.Sprintf("%s wants keys and values (key: value), got %s", where(), describeNode(n))})
			return
		}
		fields := yamlFields(t)
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key `%s`", k.Value)
				if path != "" {
					msg += fmt.Sprintf(" in `%s`", path)
				}
				if s := closest(k.Value, names); s != "" {
					msg += fmt.Sprintf(" (did you mean `%s`?)", s)
				}
				*probs = append(*probs, configProblem{k.Line, msg})
				continue
			}
			checkNode(v, f.Type, join(path, k.Value), probs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*probs = append(*probs, configProblem{n.Line, fmt.Sprintf("%s wants a list ([a, b] or lines starting with -), got %s", where(), describeNode(n))})
			return
		}
		for i, e := range n.Content {
			checkNode(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*probs = append(*probs, configProblem{n.Line, fmt.Sprintf("%s wants keys and values (name: value), got %s", where(), describeNode(n))})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), probs)
		}
	default:
		checkScalar(n, t, path, probs)
	}
}

// checkScalar decodes n into a value of type t, reporting a value of the
// wrong kind in the file's terms.
func checkScalar(n *yaml.Node, t reflect.Type, path string, probs *[]configProblem) {
	if n.Kind != yaml.ScalarNode {
		*probs = append(*probs, configProblem{n.Line, fmt.Sprintf("`%s` wants %s, got %s", path, want(t), describeNode(n))})
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		msg := fmt.Sprintf("`%s` wants %s, got %s", path, want(t), strconv.Quote(n.Value))
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			msg = fmt.Sprintf("`%s`: %s", path, message(err)) // an UnmarshalText's own message
		}
		*probs = append(*probs, configProblem{n.Line, msg})
	}
}

// want says what a value of type t looks like.
func want(t reflect.Type) string {
	if t.PkgPath() != "" && t.Kind() == reflect.Int64 && t.Name() == "Duration" {
		return "a duration such as 10s or 1h"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of at least 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a value (text)"
	}
	return "a value"
}

// describeNode names what n is, for messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "keys and values"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// yamlFields maps the YAML keys of struct type t to its fields (inline
// structs included; fields tagged "-" are not keys).
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlSyntax turns a YAML parse error into "line N: what is wrong".
func yamlSyntax(err error) string {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return "line " + m[1] + ": " + msg[len(m[0]):] + " (not valid YAML)"
	}
	return strings.TrimPrefix(msg, "yaml: ") + " (not valid YAML)"
}
