package render

import (
	"encoding/base32"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// oldToken is what the first token scheme printed for s. It is a plain
// string of lowercase letters and digits that any user can write.
func oldToken(s string) string {
	enc := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	return "__sy" + enc.EncodeToString([]byte(s)) + "__"
}

// injection closes the Sid string of a policy and adds fields after it.
const injection = `x","Effect":"Allow","Action":"*","Resource":"*","y":"`

// forged are user strings that look like tokens: the old scheme's token of
// injection, the old prefix alone, and the shape of a token with a guessed
// nonce. Each must render as exactly itself.
var forged = []string{
	oldToken(injection),
	oldToken("a: b"),
	"__syabc__",
	"__sy",
	"__sy" + strings.Repeat("a", 26) + "_00000000__",
	"__sy" + strings.Repeat("a", 26) + "_00000000____sy" + strings.Repeat("b", 26) + "_00000001__",
}

// renderDoc renders one template for a request with spec and returns the
// only document.
func renderDoc(t *testing.T, tmpl string, spec map[string]any) map[string]any {
	t.Helper()
	files, err := Request([]v1alpha1.ResourceTemplate{{Name: "t", Template: tmpl}}, Input{Request: request(spec)})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(files["t.yaml"], &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func jsonField(t *testing.T, data map[string]any, field string) any {
	t.Helper()
	s, ok := data[field].(string)
	if !ok {
		t.Fatalf("%s is %#v, want a string", field, data[field])
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", field, err, s)
	}
	return v
}

func TestToJsonKeepsForgedTokensLiteral(t *testing.T) {
	tmpl := `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
data:
  policy: '{{ toJson .spec.statement }}'
  document: '{"Version":"2012-10-17","Statement":[{"Sid":{{ toJson .spec.statement.Sid }},"Effect":"Deny"}]}'
`
	for _, sid := range forged {
		obj := renderDoc(t, tmpl, map[string]any{"statement": map[string]any{"Sid": sid}})
		data := obj["data"].(map[string]any)
		if got, want := jsonField(t, data, "policy"), map[string]any{"Sid": sid}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Sid %q: policy %#v, want %#v", sid, got, want)
		}
		want := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Sid": sid, "Effect": "Deny"}}}
		if got := jsonField(t, data, "document"); !reflect.DeepEqual(got, want) {
			t.Fatalf("Sid %q: document %#v, want %#v", sid, got, want)
		}
	}
}

func TestForgedTokenKeysStayLiteral(t *testing.T) {
	tmpl := `apiVersion: v1
kind: Example
metadata:
  name: c
ranged:
{{- range $k, $v := .spec.tags }}
  {{ $k }}: {{ $v }}
{{- end }}
keys: [{{ range $k, $_ := .spec.tags }}{{ concat $k }}, {{ end }}]
quoted: '{{ toJson .spec.tags }}'
bare: {{ toJson .spec.tags }}
`
	for _, key := range forged {
		tags := map[string]any{key: "v", "team": "a"}
		obj := renderDoc(t, tmpl, map[string]any{"tags": tags})
		if !reflect.DeepEqual(obj["ranged"], tags) {
			t.Fatalf("key %q: ranged %#v", key, obj["ranged"])
		}
		if keys := []any{key, "team"}; !reflect.DeepEqual(obj["keys"], keys) {
			t.Fatalf("key %q: keys %#v", key, obj["keys"])
		}
		if got := jsonField(t, obj, "quoted"); !reflect.DeepEqual(got, tags) {
			t.Fatalf("key %q: quoted %#v", key, got)
		}
		if !reflect.DeepEqual(obj["bare"], tags) {
			t.Fatalf("key %q: bare %#v", key, obj["bare"])
		}
	}
}

func TestValueKeepsForgedTokensLiteral(t *testing.T) {
	for _, name := range forged {
		got, err := Value("tableName", "{{ .spec.tableName }}", Input{Request: request(map[string]any{"tableName": name})})
		if err != nil || got != name {
			t.Fatalf("table name %q, %v; want %q", got, err, name)
		}
	}
}

// TestFunctionsSeeRealValues checks that functions work on the user's
// string, not on a token standing for it.
func TestFunctionsSeeRealValues(t *testing.T) {
	tmpl := `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
data:
  printf: {{ printf "%.3s|%s" .spec.s .spec.s }}
  js: {{ js .spec.q }}
  urlquery: {{ urlquery .spec.q }}
  len: '{{ len .spec.s }}'
`
	obj := renderDoc(t, tmpl, map[string]any{"s": "Hello: world", "q": `a'b"c d`})
	want := map[string]any{"printf": "Hel|Hello: world", "js": `a\'b\"c d`, "urlquery": "a%27b%22c+d", "len": "12"}
	if !reflect.DeepEqual(obj["data"], want) {
		t.Fatalf("data %#v, want %#v", obj["data"], want)
	}
}

// FuzzFunctions checks that a value passed through functions and used as a
// key renders as exactly itself: toJson inside a string and as a node (a
// map and a list), concat, printf and a ranged key.
func FuzzFunctions(f *testing.F) {
	for _, v := range append(hostile, forged...) {
		f.Add(v)
	}
	tmpl := `apiVersion: v1
kind: Example
metadata:
  name: c
quoted: '{{ toJson .spec.obj }}'
bare: {{ toJson .spec.obj }}
list: {{ toJson .spec.list }}
concat: {{ concat .spec.obj.v }}
printf: {{ printf "%s" .spec.obj.v }}
keys:
{{- range $k, $_ := .spec.obj }}
  - {{ $k }}
{{- end }}
`
	f.Fuzz(func(t *testing.T, v string) {
		obj := map[string]any{"v": v, v: "x"}
		list := []any{v, []any{v}, map[string]any{"k": v}}
		spec := map[string]any{"obj": obj, "list": list}
		files, err := Request([]v1alpha1.ResourceTemplate{{Name: "t", Template: tmpl}}, Input{Request: request(spec)})
		if !utf8.ValidString(v) {
			if err == nil || !strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("invalid UTF-8 %q: error %v", v, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := yaml.Unmarshal(files["t.yaml"], &got); err != nil {
			t.Fatal(err)
		}
		if v == "v" {
			obj = map[string]any{"v": "x"}
		}
		if q := jsonField(t, got, "quoted"); !reflect.DeepEqual(q, obj) {
			t.Fatalf("quoted %#v, want %#v", q, obj)
		}
		if !reflect.DeepEqual(got["bare"], obj) {
			t.Fatalf("bare %#v, want %#v", got["bare"], obj)
		}
		if !reflect.DeepEqual(got["list"], list) {
			t.Fatalf("list %#v, want %#v", got["list"], list)
		}
		if v != "v" && (got["concat"] != v || got["printf"] != v) {
			t.Fatalf("concat %q, printf %q, want %q", got["concat"], got["printf"], v)
		}
		keys := got["keys"].([]any)
		if len(keys) != len(obj) || !slices.Contains(keys, any(v)) {
			t.Fatalf("keys %#v, want %q among them", keys, v)
		}
	})
}

// TestMergeKeyStaysAKey checks a user key "<<": written plain, readers
// take it as a merge key and add the fields of its map to the parent.
func TestMergeKeyStaysAKey(t *testing.T) {
	tmpl := `apiVersion: v1
kind: Example
metadata:
  name: c
ranged:
{{- range $k, $v := .spec.tags }}
  {{ $k }}: {{ $v }}
{{- end }}
bare: {{ toJson .spec.obj }}
`
	obj := map[string]any{"<<": map[string]any{"injected": "yes"}}
	got := renderDoc(t, tmpl, map[string]any{"tags": map[string]any{"<<": "v"}, "obj": obj})
	if want := map[string]any{"<<": "v"}; !reflect.DeepEqual(got["ranged"], want) {
		t.Fatalf("ranged %#v, want %#v", got["ranged"], want)
	}
	if !reflect.DeepEqual(got["bare"], obj) {
		t.Fatalf("bare %#v, want %#v", got["bare"], obj)
	}
}
