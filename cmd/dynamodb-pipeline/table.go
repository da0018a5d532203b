package main

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/switchyard-dev/switchyard/internal/pipelinekit"
)

// The Table is the template Promise's, with the defaults of its request
// CRD, in a namespace of its own: the Promises' dependencies each create
// their namespace, and a destination's dependencies may not hold the same
// object twice (kustomize refuses to build them).
const (
	tableNamespace     = "switchyard-dynamodb-kratix"
	defaultBillingMode = "PAY_PER_REQUEST"
	provisioned        = "PROVISIONED"
)

// table is ACK's dynamodb.services.k8s.aws/v1alpha1 Table, with the fields
// the template Promise sets, in the order a person reads them.
type table struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       tableSpec  `yaml:"spec"`
}

type objectMeta struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
}

type tableSpec struct {
	TableName             string                `yaml:"tableName"`
	BillingMode           string                `yaml:"billingMode"`
	AttributeDefinitions  []attributeDefinition `yaml:"attributeDefinitions"`
	KeySchema             []keyElement          `yaml:"keySchema"`
	ProvisionedThroughput *throughput           `yaml:"provisionedThroughput,omitempty"`
	Tags                  []tag                 `yaml:"tags,omitempty"`
}

type attributeDefinition struct {
	AttributeName string `yaml:"attributeName"`
	AttributeType string `yaml:"attributeType"`
}

type keyElement struct {
	AttributeName string `yaml:"attributeName"`
	KeyType       string `yaml:"keyType"`
}

type throughput struct {
	ReadCapacityUnits  int64 `yaml:"readCapacityUnits"`
	WriteCapacityUnits int64 `yaml:"writeCapacityUnits"`
}

type tag struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// key is a request's hashKey or rangeKey.
type key struct{ name, typ string }

// tableFor is the Table for a request. The request CRD validates most of
// this; the checks here make a request that reached the pipeline some
// other way fail with the field's name rather than a broken Table.
func tableFor(req map[string]any) (*table, error) {
	ns, name := pipelinekit.NestedString(req, "metadata", "namespace"), pipelinekit.NestedString(req, "metadata", "name")
	if ns == "" || name == "" {
		return nil, errors.New("metadata.name and metadata.namespace must be set: the Table is named <namespace>.<name>")
	}
	spec, _ := pipelinekit.Nested(req, "spec").(map[string]any)
	t := &table{
		APIVersion: "dynamodb.services.k8s.aws/v1alpha1",
		Kind:       "Table",
		Metadata:   objectMeta{Name: ns + "." + name, Namespace: tableNamespace},
	}
	var err error
	if t.Spec, err = specFor(spec); err != nil {
		return nil, err
	}
	return t, nil
}

func specFor(spec map[string]any) (tableSpec, error) {
	var s tableSpec
	if s.TableName = pipelinekit.NestedString(spec, "tableName"); s.TableName == "" {
		return s, errors.New("spec.tableName must be set: it names the DynamoDB table")
	}
	hash, err := keyOf(spec, "hashKey")
	if err != nil {
		return s, err
	}
	if hash == nil {
		return s, errors.New("spec.hashKey must be set: a table needs a partition key")
	}
	keys := []key{*hash}
	rng, err := keyOf(spec, "rangeKey")
	if err != nil {
		return s, err
	}
	if rng != nil {
		keys = append(keys, *rng)
	}
	for i, k := range keys {
		s.AttributeDefinitions = append(s.AttributeDefinitions, attributeDefinition{k.name, k.typ})
		s.KeySchema = append(s.KeySchema, keyElement{k.name, []string{"HASH", "RANGE"}[i]})
	}
	if s.BillingMode = pipelinekit.NestedString(spec, "billingMode"); s.BillingMode == "" {
		s.BillingMode = defaultBillingMode
	}
	if s.BillingMode == provisioned {
		if s.ProvisionedThroughput, err = throughputOf(spec); err != nil {
			return s, err
		}
	}
	s.Tags, err = tagsOf(spec)
	return s, err
}

// keyOf reads spec.<field>, a {name, type} key; nil when it is absent or
// empty, as the template's `with` skips it.
func keyOf(spec map[string]any, field string) (*key, error) {
	m, _ := spec[field].(map[string]any)
	if len(m) == 0 {
		return nil, nil
	}
	k := key{name: pipelinekit.NestedString(m, "name"), typ: pipelinekit.NestedString(m, "type")}
	if k.name == "" || k.typ == "" {
		return nil, fmt.Errorf("spec.%s needs a name and a type (S, N or B)", field)
	}
	return &k, nil
}

func throughputOf(spec map[string]any) (*throughput, error) {
	read, err := units(spec, "readCapacityUnits")
	if err != nil {
		return nil, err
	}
	write, err := units(spec, "writeCapacityUnits")
	if err != nil {
		return nil, err
	}
	return &throughput{ReadCapacityUnits: read, WriteCapacityUnits: write}, nil
}

// units reads a capacity as a whole number, whichever way the YAML
// decoder typed it.
func units(spec map[string]any, field string) (int64, error) {
	switch v := spec[field].(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), nil
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), nil
		}
	case nil:
		return 0, fmt.Errorf("spec.%s must be set: billingMode %s needs read and write capacity", field, provisioned)
	}
	return 0, fmt.Errorf("spec.%s is %v; want a whole number", field, spec[field])
}

// tagsOf reads spec.tags in key order, the order the template ranges in.
func tagsOf(spec map[string]any) ([]tag, error) {
	m, err := pipelinekit.NestedStringMap(spec, "tags")
	if err != nil {
		return nil, fmt.Errorf("spec.%w", err)
	}
	var tags []tag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		tags = append(tags, tag{Key: k, Value: m[k]})
	}
	return tags, nil
}
