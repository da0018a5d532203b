package controller

import "testing"

func TestTableObject(t *testing.T) {
	files := map[string][]byte{
		"a.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\n"),
		"table.yaml": []byte(`apiVersion: v1
kind: Secret
metadata: {name: s}
---
apiVersion: dynamodb.services.k8s.aws/v1alpha1
kind: Table
metadata: {name: other, namespace: ns}
spec: {tableName: other}
---
apiVersion: dynamodb.services.k8s.aws/v1alpha1
kind: Table
metadata: {name: team-a.orders, namespace: switchyard-dynamodb}
spec: {tableName: orders}
`),
		"bare.yaml": []byte("apiVersion: dynamodb.services.k8s.aws/v1alpha1\nkind: Table\nmetadata: {name: bare}\nspec: {tableName: bare}\n"),
	}
	tests := []struct{ table, ns, name string }{
		{"orders", "switchyard-dynamodb", "team-a.orders"},
		{"other", "ns", "other"},
		{"bare", "default", "bare"},
		{"missing", "", ""},
	}
	for _, tt := range tests {
		ns, name, ok := tableObject(files, tt.table)
		if ns != tt.ns || name != tt.name || ok != (tt.name != "") {
			t.Errorf("%s: %q %q %v; want %q %q", tt.table, ns, name, ok, tt.ns, tt.name)
		}
	}
}
