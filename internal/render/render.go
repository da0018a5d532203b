package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/template"
	"unicode"
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
	r := newRenderer()
	data := r.data(in)
	annotations, labels := routerMetadata(in)

	files := map[string][]byte{}
	docs, size := 0, 0
	for _, t := range templates {
		out, err := r.execute(t, data)
		if err != nil {
			return nil, err
		}
		objs, err := r.parse(out)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", t.Name, err)
		}
		docs += len(objs)
		if docs > MaxDocuments {
			return nil, fmt.Errorf("renders more than %d documents", MaxDocuments)
		}
		content, err := marshal(objs, annotations, labels)
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

// routerMetadata returns the annotations and labels the router puts on
// every object it writes for in's request.
func routerMetadata(in Input) (annotations, labels map[string]string) {
	ns, _ := nestedString(in.Request, "metadata", "namespace")
	name, _ := nestedString(in.Request, "metadata", "name")
	annotations = map[string]string{}
	for k, v := range in.Annotations {
		annotations[k] = v
	}
	annotations[RequestAnnotation], annotations[PromiseAnnotation] = ns+"/"+name, in.Promise
	// The label lets the router watch, on the destination, exactly the
	// objects requests rendered, and tell whose each one is.
	if uid, _ := nestedString(in.Request, "metadata", "uid"); uid != "" {
		labels = map[string]string{v1alpha1.RequestUIDLabel: uid}
	}
	return annotations, labels
}

// IsManifest reports whether a written file holds Kubernetes objects the
// router reads: YAML. A workflow may write other files too (Terraform,
// JSON), which are written as they are and not watched.
func IsManifest(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// Outputs marks the objects in a workflow's output files as Request marks
// rendered ones, for in's request, so that the router can watch them and
// tell whose they are. Files that are not manifests are kept as they are.
func Outputs(files map[string][]byte, in Input) (map[string][]byte, error) {
	r := newRenderer()
	annotations, labels := routerMetadata(in)
	out := make(map[string][]byte, len(files))
	for name, b := range files {
		if !IsManifest(name) {
			out[name] = b
			continue
		}
		objs, err := r.parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		content, err := marshal(objs, annotations, labels)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = content
	}
	return out, nil
}

// Value renders a one-line template (a probe's table name, for example)
// with the same data as Request and returns the string it prints.
func Value(name, text string, in Input) (string, error) {
	r := newRenderer()
	out, err := r.execute(v1alpha1.ResourceTemplate{Name: name, Template: text}, r.data(in))
	if err != nil {
		return "", err
	}
	v, _ := r.resolve(strings.TrimSpace(string(out)))
	if v == "" || strings.ContainsAny(v, "\n\r") {
		return "", fmt.Errorf("template %s: renders %q; want one non-empty line", name, v)
	}
	return v, nil
}

// data is what templates see: the request's apiVersion, kind, metadata and
// spec, the Promise and the destination, with every user string wrapped.
func (r *renderer) data(in Input) map[string]any {
	labels := make(map[string]any, len(in.DestinationLabels))
	for k, v := range in.DestinationLabels {
		labels[k] = v
	}
	data := map[string]any{
		"promise":     map[string]any{"name": r.wrap(in.Promise)},
		"destination": map[string]any{"name": r.wrap(in.Destination), "labels": r.wrap(labels)},
	}
	for _, k := range []string{"apiVersion", "kind", "metadata", "spec"} {
		if v, ok := in.Request[k]; ok {
			data[k] = r.wrap(v)
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
	return marshal(parsed, map[string]string{PromiseAnnotation: promise}, nil)
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
	tmpl, err := template.New(t.Name).Funcs(new(renderer).funcs()).Option("missingkey=default").Parse(t.Template)
	if err != nil {
		return nil, err
	}
	for _, each := range tmpl.Templates() {
		if each.Tree != nil {
			hookPrints(each.Root)
		}
	}
	parsed.Store(key, tmpl)
	return tmpl, nil
}

// execute runs a clone of the cached template with this render's
// functions, which mint into this render's table.
func (r *renderer) execute(t v1alpha1.ResourceTemplate, data map[string]any) ([]byte, error) {
	tmpl, err := parseTemplate(t)
	if err == nil {
		tmpl, err = tmpl.Clone()
	}
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", t.Name, err)
	}
	tmpl.Funcs(r.funcs()).Funcs(template.FuncMap{printHook: r.emit})
	var buf bytes.Buffer
	if err := tmpl.Execute(&limitedWriter{w: &buf, r: r}, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", t.Name, err)
	}
	return buf.Bytes(), nil
}

// limitedWriter charges what a template writes to the render's budget, so
// a template cannot exhaust memory before the size check.
type limitedWriter struct {
	w io.Writer
	r *renderer
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if err := l.r.charge(len(p)); err != nil {
		return 0, err
	}
	return l.w.Write(p)
}

// parse reads the rendered YAML, replaces tokens inside scalars by their
// values and returns the non-empty documents as objects.
func (r *renderer) parse(out []byte) ([]map[string]any, error) {
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
		if err := r.substitute(&doc, false); err != nil {
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

func marshal(objs []map[string]any, annotations, labels map[string]string) ([]byte, error) {
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
		if len(labels) > 0 {
			l, _ := meta["labels"].(map[string]any)
			if l == nil {
				l = map[string]any{}
			}
			for k, v := range labels {
				l[k] = v
			}
			meta["labels"] = l
		}
		if err := enc.Encode(yamlValue(obj)); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// yamlString is a string written in a style every reader reads back as
// the same string. The encoder's own choice misreads some: "<<" written
// plain is a merge key, so a user's key "<<" holding a map would add its
// fields to the parent; a block scalar holding a tab fails to parse.
type yamlString string

// MarshalYAML quotes "<<", and with escapes a string that holds anything
// not printable (line breaks included); the encoder writes the rest.
func (s yamlString) MarshalYAML() (any, error) {
	v := string(s)
	if v == "<<" || utf8.ValidString(v) && strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: yaml.DoubleQuotedStyle}, nil
	}
	return v, nil
}

// yamlValue is v with every string and key a yamlString.
func yamlValue(v any) any {
	switch v := v.(type) {
	case string:
		return yamlString(v)
	case map[string]any:
		out := make(map[yamlString]any, len(v))
		for k, e := range v {
			out[yamlString(k)] = yamlValue(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = yamlValue(e)
		}
		return out
	}
	return v
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
