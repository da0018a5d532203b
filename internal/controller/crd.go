package controller

import (
	"encoding/json"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// RequestCRD decodes a Promise's spec.api and returns the CRD to install,
// with the router's additions, and the request kind it serves. The error
// says what to fix in spec.api.
func RequestCRD(p *v1alpha1.Promise) (*apiextensionsv1.CustomResourceDefinition, schema.GroupVersionKind, error) {
	var crd apiextensionsv1.CustomResourceDefinition
	var gvk schema.GroupVersionKind
	if err := json.Unmarshal(p.Spec.API.Raw, &crd); err != nil {
		return nil, gvk, fmt.Errorf("spec.api is not a CustomResourceDefinition: %v", err)
	}
	s := &crd.Spec
	switch {
	case crd.APIVersion != "apiextensions.k8s.io/v1" || crd.Kind != "CustomResourceDefinition":
		return nil, gvk, fmt.Errorf("spec.api must be an apiextensions.k8s.io/v1 CustomResourceDefinition, not %s %s", crd.APIVersion, crd.Kind)
	case s.Group == "" || s.Names.Kind == "" || s.Names.Plural == "":
		return nil, gvk, fmt.Errorf("spec.api needs spec.group, spec.names.kind and spec.names.plural")
	case crd.Name != s.Names.Plural+"."+s.Group:
		return nil, gvk, fmt.Errorf("spec.api metadata.name must be %s.%s", s.Names.Plural, s.Group)
	case s.Scope != apiextensionsv1.NamespaceScoped:
		return nil, gvk, fmt.Errorf("spec.api scope must be Namespaced: requests are placed per namespace")
	case len(s.Versions) != 1:
		return nil, gvk, fmt.Errorf("spec.api must have exactly one version, has %d", len(s.Versions))
	}
	v := &s.Versions[0]
	if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		return nil, gvk, fmt.Errorf("spec.api version %s needs schema.openAPIV3Schema", v.Name)
	}
	root := v.Schema.OpenAPIV3Schema
	spec, ok := root.Properties["spec"]
	if !ok || spec.Type != "object" {
		return nil, gvk, fmt.Errorf("spec.api schema needs a spec property of type object")
	}
	if _, ok := spec.Properties[v1alpha1.DestinationSelectorField]; !ok {
		if spec.Properties == nil {
			spec.Properties = map[string]apiextensionsv1.JSONSchemaProps{}
		}
		spec.Properties[v1alpha1.DestinationSelectorField] = destinationSelectorSchema
	}
	root.Properties["spec"] = spec
	status := requestStatusSchema
	if len(configurePipelines(p)) > 0 {
		// Pipelines set status fields of their own (status.yaml).
		status = *status.DeepCopy()
		status.XPreserveUnknownFields = ptr(true)
	}
	root.Properties["status"] = status
	v.Served, v.Storage = true, true
	v.Subresources = &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}}
	columns := append([]apiextensionsv1.CustomResourceColumnDefinition{}, printerColumns...)
	if p.Spec.Status != nil {
		for _, c := range p.Spec.Status.PrinterColumns {
			columns = append(columns, apiextensionsv1.CustomResourceColumnDefinition{Name: c.Name, Type: "string",
				JSONPath: ".status.outputs." + c.Output, Description: c.Description, Priority: c.Priority})
		}
	}
	columns = append(columns, ageColumns...)
	v.AdditionalPrinterColumns = append(columns, v.AdditionalPrinterColumns...)
	if crd.Labels == nil {
		crd.Labels = map[string]string{}
	}
	crd.Labels[v1alpha1.PromiseLabel] = p.Name
	crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	gvk = schema.GroupVersionKind{Group: s.Group, Version: v.Name, Kind: s.Names.Kind}
	return &crd, gvk, nil
}

var destinationSelectorSchema = apiextensionsv1.JSONSchemaProps{
	Type:          "object",
	Description:   "Labels a destination must have to take this request, on top of the Promise's selectors.",
	MaxProperties: ptr(int64(32)),
	AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true,
		Schema: &apiextensionsv1.JSONSchemaProps{Type: "string", MaxLength: ptr(int64(63))}},
}

var requestStatusSchema = func() apiextensionsv1.JSONSchemaProps {
	str := func(desc string) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "string", Description: desc}
	}
	condition := apiextensionsv1.JSONSchemaProps{
		Type:     "object",
		Required: []string{"type", "status", "lastTransitionTime", "reason", "message"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"type":               str("Scheduled, Written, Applied or Ready."),
			"status":             {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"True"`)}, {Raw: []byte(`"False"`)}, {Raw: []byte(`"Unknown"`)}}},
			"reason":             str("CamelCase reason."),
			"message":            str("What happened, for a person."),
			"lastTransitionTime": {Type: "string", Format: "date-time"},
			"observedGeneration": {Type: "integer", Format: "int64"},
		},
	}
	return apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "Written by the Switchyard router.",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"observedGeneration": {Type: "integer", Format: "int64"},
			"destination":        str("Destination the request is placed on."),
			"placementReason":    str("Why that destination was chosen."),
			"commit":             str("Commit in the state store that carries the request."),
			"outputs":            stringMap("Computed by the Promise's status.outputs from the objects the request rendered, read on its destination."),
			"verified":           stringMap("What the Promise's verification steps confirmed out of band (dynamoDBTable: tableArn)."),
			"conditions": {
				Type:         "array",
				XListType:    ptr("map"),
				XListMapKeys: []string{"type"},
				Items:        &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &condition},
			},
		},
	}
}()

var printerColumns = []apiextensionsv1.CustomResourceColumnDefinition{
	{Name: "Destination", Type: "string", JSONPath: ".status.destination", Description: "Where the request was placed."},
	{Name: "Commit", Type: "string", JSONPath: ".status.commit", Description: "State store commit carrying the request."},
	{Name: "Applied", Type: "string", JSONPath: `.status.conditions[?(@.type=="Applied")].status`, Description: "Whether Flux on the destination applied the commit."},
	{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`},
	{Name: "Reason", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].reason`},
}

// ageColumns end the router's columns.
var ageColumns = []apiextensionsv1.CustomResourceColumnDefinition{
	{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	{Name: "Message", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].message`, Priority: 1},
}

func stringMap(desc string) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "object", Description: desc, MaxProperties: ptr(int64(64)),
		AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}}
}

func ptr[T any](v T) *T { return &v }
