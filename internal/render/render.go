package render

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Limits on what one request may render to.
const (
	MaxDocuments = 100
	MaxBytes     = 1 << 20
)

// Annotations the router adds to every rendered object, so that an object
// on a destination can be traced back to its request.
const (
	RequestAnnotation = "switchyard.dev/request"
	PromiseAnnotation = "switchyard.dev/promise"
)

// Input is what a request's templates see.
type Input struct {
	// Request is the request object (unstructured content).
	Request map[string]any
	// Promise is the Promise's name.
	Promise string
	// Destination and DestinationLabels describe the chosen destination.
	Destination       string
	DestinationLabels map[string]string
	// Annotations are added to every rendered object, over the template's
	// own (a Promise's retain annotations); the router's two still win.
	Annotations map[string]string
}

// Request renders every template for in and returns the files to write,
// named <template>.yaml.
func Request(templates []v1alpha1.ResourceTemplate, in Input) (map[string][]byte, error) {
	data := in.data()
	ns, _ := nestedString(in.Request, "metadata", "namespace")
	name, _ := nestedString(in.Request, "metadata", "name")
	annotations := map[string]string{}
	for k, v := range in.Annotations {
		annotations[k] = v
	}
	annotations[RequestAnnotation], annotations[PromiseAnnotation] = ns+"/"+name, in.Promise

	files := map[string][]byte{}
	docs, size := 0, 0
	for _, t := range templates {
		out, err := execute(t, data)
		if err != nil {
			return nil, err
		}
		objs, err := parse(out)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", t.Name, err)
		}
		docs += len(objs)
		if docs > MaxDocuments {
			return nil, fmt.Errorf("renders more than %d documents", MaxDocuments)
		}
		content, err := marshal(objs, annotations)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", t.Name, err)
		}
		size += len(content)
		if size > MaxBytes {
			return nil, fmt.Errorf("renders more than %d bytes", MaxBytes)
		}
		if len(content) > 0 {
			files[t.Name+".yaml"] = content
		}
	}
	return files, nil
}

// Value renders a one-line template (a probe's table name, for example)
// with the same data as Request and returns the string it prints.
func Value(name, text string, in Input) (string, error) {
	out, err := execute(v1alpha1.ResourceTemplate{Name: name, Template: text}, in.data())
	if err != nil {
		return "", err
	}
	v, _ := untoken(strings.TrimSpace(string(out)))
	if v == "" || strings.ContainsAny(v, "\n\r") {
		return "", fmt.Errorf("template %s: renders %q; want one non-empty line", name, v)
	}
	return v, nil
}

// data is what templates see: the request's apiVersion, kind, metadata and
// spec, the Promise and the destination, with every user string wrapped.
func (in Input) data() map[string]any {
	data := map[string]any{
		"promise":     map[string]any{"name": wrap(in.Promise)},
		"destination": map[string]any{"name": wrap(in.Destination), "labels": wrapLabels(in.DestinationLabels)},
	}
	for _, k := range []string{"apiVersion", "kind", "metadata", "spec"} {
		if v, ok := in.Request[k]; ok {
			data[k] = wrap(v)
		}
	}
	return data
}

// Manifests validates literal objects (a Promise's dependencies) and
// returns them as one multi-document YAML file.
func Manifests(objs []runtime.RawExtension, promise string) ([]byte, error) {
	if len(objs) > MaxDocuments*10 {
		return nil, fmt.Errorf("more than %d dependencies", MaxDocuments*10)
	}
	parsed := make([]map[string]any, 0, len(objs))
	for i, raw := range objs {
		var obj map[string]any
		if err := json.Unmarshal(raw.Raw, &obj); err != nil {
			return nil, fmt.Errorf("dependency %d: %w", i, err)
		}
		if err := checkObject(obj); err != nil {
			return nil, fmt.Errorf("dependency %d: %w", i, err)
		}
		parsed = append(parsed, obj)
	}
	return marshal(parsed, map[string]string{PromiseAnnotation: promise})
}

// parsed caches templates by name and text: every request of a Promise
// renders with the same few, so parsing them per request was wasted work.
// A changed template is a new key; old entries are a few per Promise edit.
var parsed sync.Map

func parseTemplate(t v1alpha1.ResourceTemplate) (*template.Template, error) {
	key := t.Name + "\x00" + t.Template
	if tmpl, ok := parsed.Load(key); ok {
		return tmpl.(*template.Template), nil
	}
	tmpl, err := template.New(t.Name).Funcs(funcs).Option("missingkey=default").Parse(t.Template)
	if err != nil {
		return nil, err
	}
	parsed.Store(key, tmpl)
	return tmpl, nil
}

func execute(t v1alpha1.ResourceTemplate, data map[string]any) ([]byte, error) {
	tmpl, err := parseTemplate(t)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", t.Name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&limitedWriter{w: &buf, n: MaxBytes * 4}, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", t.Name, err)
	}
	return buf.Bytes(), nil
}

// limitedWriter fails once n bytes were written, so a template cannot
// exhaust memory before the size check.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("output larger than %d bytes", MaxBytes)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// parse reads the rendered YAML, replaces tokens inside scalars by their
// values and returns the non-empty documents as objects.
func parse(out []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var objs []map[string]any
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("rendered YAML is invalid: %w", err)
		}
		if len(objs) >= MaxDocuments {
			return nil, fmt.Errorf("renders more than %d documents", MaxDocuments)
		}
		if err := substitute(&doc); err != nil {
			return nil, err
		}
		if isEmpty(&doc) {
			continue
		}
		v, err := value(&doc)
		if err != nil {
			return nil, err
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %d is not an object", len(objs)+1)
		}
		if err := checkObject(obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(objs)+1, err)
		}
		objs = append(objs, obj)
	}
}

// value converts a resolved YAML node to JSON-compatible data.
func value(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		return value(n.Content[0])
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := value(n.Content[i])
			if err != nil {
				return nil, err
			}
			v, err := value(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := value(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("unsupported YAML node at line %d", n.Line)
}

func isEmpty(doc *yaml.Node) bool {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	return doc.Kind == 0 || (doc.Kind == yaml.ScalarNode && doc.Tag == "!!null")
}

func checkObject(obj map[string]any) error {
	for _, field := range [][]string{{"apiVersion"}, {"kind"}, {"metadata", "name"}} {
		if v, ok := nestedString(obj, field...); !ok || v == "" {
			return fmt.Errorf("%s must be a non-empty string", strings.Join(field, "."))
		}
	}
	return nil
}

func marshal(objs []map[string]any, annotations map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, obj := range objs {
		meta := obj["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
		}
		for k, v := range annotations {
			ann[k] = v
		}
		meta["annotations"] = ann
		if err := enc.Encode(obj); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func nestedString(obj map[string]any, fields ...string) (string, bool) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		cur = m[f]
	}
	s, ok := cur.(string)
	return s, ok
}

// Tokens.

// userString is a string from a user. Printed by a template it becomes a
// token; compared, it is its real value.
type userString string

func (s userString) String() string { return token(string(s)) }

var (
	tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	tokenPattern  = regexp.MustCompile(`__sy([a-z2-7]*)__`)
	// plainKey is a map key that YAML reads back as the same string in
	// any position, so it can be used as is.
	plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,252}$`)
)

func token(s string) string { return "__sy" + tokenEncoding.EncodeToString([]byte(s)) + "__" }

func untoken(s string) (string, bool) {
	found := false
	out := tokenPattern.ReplaceAllStringFunc(s, func(m string) string {
		b, err := tokenEncoding.DecodeString(m[4 : len(m)-2])
		if err != nil {
			return m
		}
		found = true
		return string(b)
	})
	return out, found
}

// wrap turns every string in v into a userString and every map key that is
// not plain into a token.
func wrap(v any) any {
	switch v := v.(type) {
	case string:
		return userString(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[wrapKey(k)] = wrap(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = wrap(e)
		}
		return out
	default:
		return v
	}
}

func wrapKey(k string) string {
	switch strings.ToLower(k) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n":
		return token(k)
	}
	if plainKey.MatchString(k) {
		return k
	}
	return token(k)
}

func wrapLabels(l map[string]string) map[string]any {
	out := make(map[string]any, len(l))
	for k, v := range l {
		out[wrapKey(k)] = userString(v)
	}
	return out
}

// unwrap undoes wrap, for toJson.
func unwrap(v any) any {
	switch v := v.(type) {
	case userString:
		return string(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			rk, _ := untoken(k)
			out[rk] = unwrap(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = unwrap(e)
		}
		return out
	default:
		return v
	}
}

// substitute replaces tokens in every scalar (keys included) with their
// values, marking the result as a quoted string so YAML cannot reinterpret
// it.
func substitute(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("YAML aliases are not allowed in rendered output")
	}
	if n.Kind == yaml.ScalarNode {
		if v, ok := untoken(n.Value); ok {
			if !utf8.ValidString(v) {
				return fmt.Errorf("a value is not valid UTF-8")
			}
			n.Value, n.Tag, n.Style = v, "!!str", yaml.DoubleQuotedStyle
		}
		return nil
	}
	n.Anchor = ""
	for _, c := range n.Content {
		if err := substitute(c); err != nil {
			return err
		}
	}
	return nil
}

// Template functions.

var funcs = template.FuncMap{
	"concat": func(args ...any) userString {
		var b strings.Builder
		for _, a := range args {
			b.WriteString(raw(a))
		}
		return userString(b.String())
	},
	"lower": func(v any) userString { return userString(strings.ToLower(raw(v))) },
	"upper": func(v any) userString { return userString(strings.ToUpper(raw(v))) },
	"trunc": func(n int, v any) userString {
		r := []rune(raw(v))
		if n >= 0 && len(r) > n {
			r = r[:n]
		}
		return userString(string(r))
	},
	"default": func(d, v any) any {
		if empty(v) {
			return d
		}
		return v
	},
	"required": func(msg string, v any) (any, error) {
		if empty(v) {
			return nil, errors.New(msg)
		}
		return v, nil
	},
	"toJson": func(v any) (string, error) {
		b, err := json.Marshal(unwrap(v))
		return string(b), err
	},
}

// raw is the real string of a template value.
func raw(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case userString:
		return string(v)
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case userString:
		return v == ""
	case string:
		return v == ""
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}
