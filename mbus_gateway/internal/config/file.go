package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxDepth bounds nesting in an options file: options nest three levels
// (meters → entry → value); anything much deeper is not an options file,
// and the bound keeps hostile input from costing stack.
const maxDepth = 32

// maxFileSize bounds an options file; real ones are a few kilobytes, even
// with hundreds of meters.
const maxFileSize = 1 << 20

// readTree decodes an options file into plain values: map[string]any,
// []any, string, bool, nil and numbers (json.Number from JSON; int, uint64
// or float64 from YAML). A file named *.json, or one that starts with '{'
// when the name does not tell, is JSON; everything else is YAML.
//
// Viper reads the file through this (see decoder.Decode) rather than
// through its own codecs, because those lowercase keys, keep the last of
// two equal keys and give no line numbers; the strict checks need the file
// exactly as written.
func readTree(data []byte, name string) (map[string]any, error) {
	if len(data) > maxFileSize {
		return nil, &SyntaxError{File: name, Msg: fmt.Sprintf("the file is larger than %d bytes: not an options file", maxFileSize)}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &SyntaxError{File: name, Msg: "the file is empty"}
	}
	var tree any
	var err error
	if isJSON(name, trimmed) {
		tree, err = readJSON(data, name)
	} else {
		tree, err = readYAML(data, name)
	}
	if err != nil {
		return nil, err
	}
	switch t := tree.(type) {
	case map[string]any:
		return t, nil
	case nil: // a YAML file of comments only
		return map[string]any{}, nil
	}
	return nil, &SyntaxError{File: name, Msg: "want a mapping of options at the top level, got " + describe(tree)}
}

func isJSON(name string, trimmed []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return true
	case ".yaml", ".yml":
		return false
	}
	return trimmed[0] == '{'
}

// readJSON decodes token by token instead of with json.Unmarshal so that a
// key given twice is an error (Unmarshal keeps the last one silently) and
// every error has a line and column.
func readJSON(data []byte, name string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	at := func(off int64, msg string) error {
		line, col := position(data, off)
		return &SyntaxError{File: name, Line: line, Column: col, Msg: msg}
	}
	v, err := jsonValue(dec, 0)
	if err == nil {
		end := dec.InputOffset()
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			rest := data[end:]
			return nil, at(end+int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n"))), "unexpected text after the options object")
		}
		return v, nil
	}
	var syn *json.SyntaxError
	var dup *duplicateKey
	switch {
	case errors.As(err, &syn):
		return nil, at(syn.Offset, syn.Error())
	case errors.As(err, &dup):
		return nil, at(keyStart(data, dup.end), fmt.Sprintf("%s is given twice", quote(dup.key)))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return nil, at(int64(len(data)), "unexpected end of file")
	case errors.Is(err, errTooDeep):
		return nil, at(dec.InputOffset()-1, err.Error()) // at the bracket just read
	}
	return nil, at(dec.InputOffset(), err.Error())
}

var errTooDeep = errors.New("nested too deeply")

type duplicateKey struct {
	key string
	end int64 // offset just after the key
}

func (e *duplicateKey) Error() string { return "duplicate key " + e.key }

func jsonValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxDepth {
		return nil, errTooDeep
	}
	if delim == '[' {
		list := []any{}
		for dec.More() {
			v, err := jsonValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token() // ']'
		return list, err
	}
	obj := map[string]any{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := kt.(string) // the decoder only returns strings as keys
		if _, seen := obj[key]; seen {
			return nil, &duplicateKey{key: key, end: dec.InputOffset()}
		}
		v, err := jsonValue(dec, depth+1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
	_, err = dec.Token() // '}'
	return obj, err
}

// position turns a 0-based byte offset into a 1-based line and column
// (counted in bytes).
func position(data []byte, off int64) (line, col int) {
	before := data[:min(max(off, 0), int64(len(data)))]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

// keyStart finds the offset of the opening quote of the key whose closing
// quote is just before end.
func keyStart(data []byte, end int64) int64 {
	for i := min(end, int64(len(data))) - 2; i >= 0; i-- {
		if data[i] == '"' && (i == 0 || data[i-1] != '\\') {
			return i
		}
	}
	return end
}

func readYAML(data []byte, name string) (tree any, err error) {
	// The YAML parser is third-party code fed with user input; a panic in
	// it must become an error, not a crash of the gateway.
	defer func() {
		if r := recover(); r != nil {
			tree, err = nil, &SyntaxError{File: name, Msg: fmt.Sprintf("not valid YAML (%v)", r)}
		}
	}()
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil, yamlError(err, name)
	}
	return normalize(tree, 0, name)
}

// yamlError rewrites the parser's messages ("yaml: line 3: …", several
// lines for type errors) into one SyntaxError per problem.
func yamlError(err error, name string) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			errs = append(errs, yamlLine(e, name))
		}
		return errors.Join(errs...)
	}
	return yamlLine(strings.TrimPrefix(err.Error(), "yaml: "), name)
}

func yamlLine(msg, name string) error {
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, rest, _ := strings.Cut(msg, ":")
		return &SyntaxError{File: name, Line: line, Msg: strings.TrimSpace(rest)}
	}
	return &SyntaxError{File: name, Msg: msg}
}

// normalize gives YAML maps string keys (a mapping with a non-string key
// decodes as map[any]any) and bounds the nesting like readJSON.
func normalize(v any, depth int, name string) (any, error) {
	if depth > maxDepth {
		return nil, &SyntaxError{File: name, Msg: errTooDeep.Error()}
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			n, err := normalize(e, depth+1, name)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			n, err := normalize(e, depth+1, name)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = n
		}
		return out, nil
	case []any:
		for i, e := range t {
			n, err := normalize(e, depth+1, name)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
	}
	return v, nil
}
