package render

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

func dynamoDBPromise(t testing.TB) *v1alpha1.Promise {
	t.Helper()
	b, err := os.ReadFile("../../config/promises/dynamodb/promise.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p v1alpha1.Promise
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func request(spec map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "aws.switchyard.dev/v1alpha1", "kind": "DynamoDBRequest",
		"metadata": map[string]any{"name": "orders", "namespace": "team-a"},
		"spec":     spec,
	}
}

func renderTable(t testing.TB, spec map[string]any) map[string]any {
	t.Helper()
	files, err := Request(dynamoDBPromise(t).Spec.Resources, Input{Request: request(spec), Promise: "dynamodb", Destination: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(files["table.yaml"]), "\n---\n")
	if len(files) != 1 || len(docs) != 1 {
		t.Fatalf("want one file with one document, got %d files: %v", len(files), files)
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(docs[0]), &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestDynamoDBTable(t *testing.T) {
	tests := []struct {
		name string
		spec map[string]any
		want string
	}{
		{
			name: "pay per request with hash key",
			spec: map[string]any{"tableName": "orders", "billingMode": "PAY_PER_REQUEST", "hashKey": map[string]any{"name": "id", "type": "S"}},
			want: `apiVersion: dynamodb.services.k8s.aws/v1alpha1
kind: Table
metadata:
  annotations:
    switchyard.dev/promise: dynamodb
    switchyard.dev/request: team-a/orders
  name: team-a.orders
  namespace: switchyard-dynamodb
spec:
  attributeDefinitions:
    - attributeName: id
      attributeType: S
  billingMode: PAY_PER_REQUEST
  keySchema:
    - attributeName: id
      keyType: HASH
  tableName: orders
`,
		},
		{
			name: "provisioned with range key and tags",
			spec: map[string]any{"tableName": "orders", "billingMode": "PROVISIONED", "readCapacityUnits": int64(5), "writeCapacityUnits": int64(2),
				"hashKey": map[string]any{"name": "id", "type": "S"}, "rangeKey": map[string]any{"name": "at", "type": "N"},
				"tags": map[string]any{"team": "a", "cost-centre": "42"}},
			want: `apiVersion: dynamodb.services.k8s.aws/v1alpha1
kind: Table
metadata:
  annotations:
    switchyard.dev/promise: dynamodb
    switchyard.dev/request: team-a/orders
  name: team-a.orders
  namespace: switchyard-dynamodb
spec:
  attributeDefinitions:
    - attributeName: id
      attributeType: S
    - attributeName: at
      attributeType: "N"
  billingMode: PROVISIONED
  keySchema:
    - attributeName: id
      keyType: HASH
    - attributeName: at
      keyType: RANGE
  provisionedThroughput:
    readCapacityUnits: 5
    writeCapacityUnits: 2
  tableName: orders
  tags:
    - key: cost-centre
      value: "42"
    - key: team
      value: a
`,
		},
		{
			// The old scheme's tokens of "id\nevil: true" and "team: a":
			// a user who writes them gets exactly what they wrote.
			name: "forged tokens stay literal",
			spec: map[string]any{"tableName": "orders", "billingMode": "PAY_PER_REQUEST", "hashKey": map[string]any{"name": "__synfsauzlwnfwduiduoj2wk__", "type": "S"},
				"tags": map[string]any{"__syorswc3j2ebqq__": "__syabc__"}},
			want: `apiVersion: dynamodb.services.k8s.aws/v1alpha1
kind: Table
metadata:
  annotations:
    switchyard.dev/promise: dynamodb
    switchyard.dev/request: team-a/orders
  name: team-a.orders
  namespace: switchyard-dynamodb
spec:
  attributeDefinitions:
    - attributeName: __synfsauzlwnfwduiduoj2wk__
      attributeType: S
  billingMode: PAY_PER_REQUEST
  keySchema:
    - attributeName: __synfsauzlwnfwduiduoj2wk__
      keyType: HASH
  tableName: orders
  tags:
    - key: __syorswc3j2ebqq__
      value: __syabc__
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Request(dynamoDBPromise(t).Spec.Resources, Input{Request: request(tt.spec), Promise: "dynamodb"})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(files["table.yaml"]); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// hostile values that would inject fields or documents if printed raw.
var hostile = []string{
	"id\nevil: true",
	"id\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen",
	"id: {x: 1}",
	"&anchor id",
	"*alias",
	"\"quoted\"",
	"'single'",
	"- list",
	"# comment",
	"{{ .spec }}",
	"yes",
	"null",
	"123",
	"",
	"ünïcødé ✓ \u2028 \x00",
	strings.Repeat("long ", 2000),
	"__syabc__",
	"<<",
	"\t\n",
}

func TestHostileValuesStayStrings(t *testing.T) {
	for _, v := range hostile {
		spec := map[string]any{"tableName": "t", "billingMode": "PAY_PER_REQUEST",
			"hashKey": map[string]any{"name": v, "type": "S"},
			"tags":    map[string]any{v: v, "k": v}}
		obj := renderTable(t, spec)
		s := obj["spec"].(map[string]any)
		attrs := s["attributeDefinitions"].([]any)
		if len(attrs) != 1 {
			t.Fatalf("%q: %d attribute definitions", v, len(attrs))
		}
		want := map[string]any{"attributeName": v, "attributeType": "S"}
		if !reflect.DeepEqual(attrs[0], want) {
			t.Fatalf("%q: attribute %#v", v, attrs[0])
		}
		if len(s) != 5 || len(obj) != 4 {
			t.Fatalf("%q: fields were injected: %v", v, obj)
		}
		want = map[string]any{"key": v, "value": v}
		if tags := s["tags"].([]any); len(tags) != 2 || !slices.ContainsFunc(tags, func(tag any) bool { return reflect.DeepEqual(tag, want) }) {
			t.Fatalf("%q: tags %v", v, tags)
		}
	}
}

func TestLimitsAndBadTemplates(t *testing.T) {
	many := "{{ range $i, $_ := .spec.items }}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{{ $i }}\n{{ end }}"
	items := make([]any, MaxDocuments+1)
	huge := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: {{ .spec.big }}\n"
	tests := []struct {
		name, template string
		spec           map[string]any
		err            string
	}{
		{"too many documents", many, map[string]any{"items": items}, "more than 100 documents"},
		{"too large", huge, map[string]any{"big": strings.Repeat("x", MaxBytes)}, "bytes"},
		{"missing kind", "apiVersion: v1\nmetadata:\n  name: x\n", nil, "kind must be a non-empty string"},
		{"not an object", "- a\n- b\n", nil, "not an object"},
		{"alias", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: &n x\n  labels: {a: *n}\n", nil, "aliases are not allowed"},
		{"parse error", "{{ .spec", nil, "template t"},
		{"required", "{{ required \"spec.x is required\" .spec.x }}", map[string]any{}, "spec.x is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Request([]v1alpha1.ResourceTemplate{{Name: "t", Template: tt.template}}, Input{Request: request(tt.spec)})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	tmpl := `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ lower (concat .metadata.namespace "-" .metadata.name) }}
data:
  upper: {{ upper .spec.s }}
  trunc: {{ trunc 3 .spec.s }}
  default: {{ default "fallback" .spec.missing }}
  json: {{ toJson .spec.obj }}
`
	spec := map[string]any{"s": "Hello: world", "obj": map[string]any{"a b": "c\nd"}}
	files, err := Request([]v1alpha1.ResourceTemplate{{Name: "cm", Template: tmpl}}, Input{Request: request(spec)})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(files["cm.yaml"], &obj); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"upper": "HELLO: WORLD", "trunc": "Hel", "default": "fallback", "json": map[string]any{"a b": "c\nd"}}
	if !reflect.DeepEqual(obj["data"], want) {
		t.Fatalf("data %#v", obj["data"])
	}
	if name := obj["metadata"].(map[string]any)["name"]; name != "team-a-orders" {
		t.Fatalf("name %v", name)
	}
}

func TestManifests(t *testing.T) {
	p := dynamoDBPromise(t)
	out, err := Manifests(p.Spec.Dependencies, "dynamodb")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "kind: Namespace") || !strings.Contains(string(out), "switchyard.dev/promise: dynamodb") {
		t.Fatalf("dependencies: %s", out)
	}
}

// TestRetainAnnotations: the DynamoDB Promise's retain annotations, given
// as Input.Annotations, land on the Table over the template's own, and the
// router's annotations stay the router's.
func TestRetainAnnotations(t *testing.T) {
	p := dynamoDBPromise(t)
	if p.ReschedulePolicy() != v1alpha1.RescheduleMove || p.RetainAnnotations()["services.k8s.aws/deletion-policy"] != "retain" {
		t.Fatalf("the DynamoDB Promise's reschedule is %+v; want Move with the ACK retain annotation", p.Spec.Reschedule)
	}
	templates := []v1alpha1.ResourceTemplate{{Name: "t", Template: `apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  annotations:
    services.k8s.aws/deletion-policy: delete
    kept: "yes"
`}}
	extra := map[string]string{"services.k8s.aws/deletion-policy": "retain", RequestAnnotation: "forged/forged"}
	files, err := Request(templates, Input{Request: request(nil), Promise: "dynamodb", Annotations: extra})
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(files["t.yaml"], &obj); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"services.k8s.aws/deletion-policy": "retain", "kept": "yes",
		RequestAnnotation: "team-a/orders", PromiseAnnotation: "dynamodb"}
	if !reflect.DeepEqual(obj.Metadata.Annotations, want) {
		t.Errorf("annotations %v, want %v", obj.Metadata.Annotations, want)
	}
}

// FuzzHashKeyName checks the renderer's property for any value: the output
// is one Table whose attribute names, tag key and tag value are exactly
// the input, token-like or not.
func FuzzHashKeyName(f *testing.F) {
	for _, v := range append(hostile, forged...) {
		f.Add(v)
	}
	p := dynamoDBPromise(f)
	f.Fuzz(func(t *testing.T, v string) {
		spec := map[string]any{"tableName": "t", "billingMode": "PAY_PER_REQUEST", "hashKey": map[string]any{"name": v, "type": "S"},
			"tags": map[string]any{v: v, "k": "fixed"}}
		files, err := Request(p.Spec.Resources, Input{Request: request(spec), Promise: "dynamodb"})
		if !utf8.ValidString(v) {
			if err == nil || !strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("invalid UTF-8 %q: error %v", v, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(files["table.yaml"], &obj); err != nil {
			t.Fatal(err)
		}
		s := obj["spec"].(map[string]any)
		for _, field := range []string{"attributeDefinitions", "keySchema"} {
			if got := s[field].([]any)[0].(map[string]any)["attributeName"]; got != v {
				t.Fatalf("%s: attribute name %q, want %q", field, got, v)
			}
		}
		tags := map[any]any{}
		for _, tag := range s["tags"].([]any) {
			tags[tag.(map[string]any)["key"]] = tag.(map[string]any)["value"]
		}
		if want := map[any]any{v: v, "k": "fixed"}; v != "k" && !reflect.DeepEqual(tags, want) {
			t.Fatalf("tags %v, want %v", tags, want)
		}
	})
}

// TestNoValueFailsTheRender checks that a field the request leaves unset
// or sets to null fails the render, naming the field, instead of writing
// "<no value>" where a value belongs.
func TestNoValueFailsTheRender(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: {{ %s }}\n"
	tests := []struct {
		name, action string
		spec         map[string]any
		err          string
	}{
		{"null", ".spec.mode", map[string]any{"mode": nil}, "{{.spec.mode}} has no value"},
		{"unset", ".spec.mode", map[string]any{}, "{{.spec.mode}} has no value"},
		{"unset, nested", ".spec.key.name", map[string]any{"key": map[string]any{}}, "{{.spec.key.name}} has no value"},
		{"through a variable", "$x := .spec.mode }}{{ $x", map[string]any{"mode": nil}, "{{$x}} has no value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Request([]v1alpha1.ResourceTemplate{{Name: "t", Template: strings.Replace(cm, "%s", tt.action, 1)}}, Input{Request: request(tt.spec)})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q; rendered %s", err, tt.err, files["t.yaml"])
			}
		})
	}
	t.Run("dynamodb, PROVISIONED without capacities", func(t *testing.T) {
		spec := map[string]any{"tableName": "orders", "billingMode": "PROVISIONED", "hashKey": map[string]any{"name": "id", "type": "S"}}
		files, err := Request(dynamoDBPromise(t).Spec.Resources, Input{Request: request(spec), Promise: "dynamodb"})
		if err == nil || !strings.Contains(err.Error(), "{{.spec.readCapacityUnits}} has no value") {
			t.Fatalf("error %v, want one naming .spec.readCapacityUnits; rendered %s", err, files["table.yaml"])
		}
	})
	t.Run("Value", func(t *testing.T) {
		_, err := Value("tableName", "{{ .spec.tableName }}", Input{Request: request(map[string]any{"tableName": nil})})
		if err == nil || !strings.Contains(err.Error(), "{{.spec.tableName}} has no value") {
			t.Fatalf("error %v, want one naming .spec.tableName", err)
		}
	})
	t.Run("default still fills in", func(t *testing.T) {
		files, err := Request([]v1alpha1.ResourceTemplate{{Name: "t", Template: strings.Replace(cm, "%s", `.spec.mode | default "on"`, 1)}}, Input{Request: request(map[string]any{"mode": nil})})
		if err != nil || !strings.Contains(string(files["t.yaml"]), "x: \"on\"") {
			t.Fatalf("error %v; rendered %s", err, files["t.yaml"])
		}
	})
}
