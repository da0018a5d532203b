package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/switchyard-dev/switchyard/internal/pipelinekit"
)

// Fixed names and defaults of the examples.
const (
	// objectNamespace holds the namespaced objects the resource steps
	// write: it exists on every cluster, so a step works on its own.
	objectNamespace = "default"
	// defaultImage is the deployment step's image when spec.image is unset.
	defaultImage = "nginxinc/nginx-unprivileged:1.27-alpine"
	// exampleLabel marks every object the examples write, with the step.
	exampleLabel = "kratix-examples.switchyard.dev/step"
)

// step is one subcommand: the workflow type it runs in and what it makes
// of its object.
type step struct {
	name, short string
	workflow    string
	make        func(obj map[string]any) (result, error)
}

// result is what a step writes: manifests in one output file, an optional
// destination selector, and status fields.
type result struct {
	file     string
	objects  []any
	selector map[string]string
	status   map[string]any
	// control is workflow-control.yaml, when set.
	control map[string]any
	// extra are more output files, by name.
	extra map[string][]byte
}

var steps = []step{
	{"namespace", "Write a Namespace named after the request; select destinations by spec.tier", pipelinekit.TypeResource, namespaceStep},
	{"configmap", "Write a ConfigMap holding the request's spec", pipelinekit.TypeResource, configMapStep},
	{"labels", "Write a ConfigMap <name>-labels labelled with the request's labels", pipelinekit.TypeResource, labelsStep},
	{"deployment", "Write a Deployment of one replica named after the request", pipelinekit.TypeResource, deploymentStep},
	{"dependencies", "Write the Promise's dependencies: a Namespace named after it and a ConfigMap", pipelinekit.TypePromise, dependenciesStep},
	{"scripted", "Do what the request's spec says (fail, retry later): for testing workflows", pipelinekit.TypeResource, scriptedStep},
}

// scriptedStep does what the request's spec asks, to exercise a workflow
// runner: spec.failOn ("configure" or "delete") fails with spec.failMessage;
// spec.retryUntil (RFC 3339) asks for a retry 2s later until that time;
// spec.outputBytes adds a file of that many random bytes; it writes a
// ConfigMap <name>-scripted holding spec.data and reports the request's
// generation in status.yaml.
func scriptedStep(req map[string]any) (result, error) {
	name, err := requestName(req)
	if err != nil {
		return result{}, err
	}
	if err := scriptedFailure(req, pipelinekit.ActionConfigure); err != nil {
		return result{}, err
	}
	spec, _ := pipelinekit.Nested(req, "spec").(map[string]any)
	data, _ := spec["data"].(map[string]any)
	strs, err := stringData(data)
	if err != nil {
		return result{}, err
	}
	cm := object("v1", "ConfigMap", name+"-scripted", objectNamespace, "scripted")
	cm["data"] = strs
	r := result{file: "scripted.yaml", objects: []any{cm},
		status: map[string]any{"generation": pipelinekit.Nested(req, "metadata", "generation"), "message": fmt.Sprintf("configmap %s/%s-scripted requested", objectNamespace, name)}}
	if n, _ := spec["outputBytes"].(int); n > 0 {
		// Random bytes do not compress: an output of about n bytes.
		big := make([]byte, n)
		if _, err := rand.Read(big); err != nil {
			return result{}, err
		}
		r.extra = map[string][]byte{"noise.bin": big}
	}
	if until, _ := spec["retryUntil"].(string); until != "" {
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return result{}, fmt.Errorf("spec.retryUntil: %w", err)
		}
		if time.Now().Before(t) {
			r.control = map[string]any{"retryAfter": "2s"}
		}
	}
	return r, nil
}

// scriptedFailure is the error spec.failOn asks for in action, if any.
func scriptedFailure(req map[string]any, action string) error {
	if pipelinekit.NestedString(req, "spec", "failOn") != action {
		return nil
	}
	return errors.New(pipelinekit.NestedString(req, "spec", "failMessage"))
}

func namespaceStep(req map[string]any) (result, error) {
	name, err := requestName(req)
	if err != nil {
		return result{}, err
	}
	r := result{
		file:    "namespace.yaml",
		objects: []any{object("v1", "Namespace", name, "", "namespace")},
		status:  map[string]any{"namespace": name, "message": fmt.Sprintf("namespace %s requested", name)},
	}
	if tier, err := specString(req, "tier"); err != nil {
		return result{}, err
	} else if tier != "" {
		r.selector = map[string]string{"tier": tier}
		r.status["tier"] = tier
	}
	return r, nil
}

func configMapStep(req map[string]any) (result, error) {
	name, err := requestName(req)
	if err != nil {
		return result{}, err
	}
	spec, _ := pipelinekit.Nested(req, "spec").(map[string]any)
	data, err := stringData(spec)
	if err != nil {
		return result{}, err
	}
	cm := object("v1", "ConfigMap", name, objectNamespace, "configmap")
	cm["data"] = data
	return result{
		file:    "configmap.yaml",
		objects: []any{cm},
		status:  map[string]any{"configMap": name, "message": fmt.Sprintf("configmap %s/%s requested with %d keys", objectNamespace, name, len(data))},
	}, nil
}

// labelsStep is meant for a second pipeline: each pipeline starts with an
// empty /kratix/output, so it writes an object of its own rather than
// changing the first pipeline's. The request's labels go on the ConfigMap's
// own labels, where they are valid as they are (label keys with a prefix,
// such as app.kubernetes.io/name, are not valid ConfigMap data keys).
func labelsStep(req map[string]any) (result, error) {
	name, err := requestName(req)
	if err != nil {
		return result{}, err
	}
	labels, err := pipelinekit.NestedStringMap(req, "metadata", "labels")
	if err != nil {
		return result{}, err
	}
	cm := object("v1", "ConfigMap", name+"-labels", objectNamespace, "labels")
	meta := cm["metadata"].(map[string]any)
	for k, v := range labels {
		if k != exampleLabel {
			meta["labels"].(map[string]any)[k] = v
		}
	}
	from := pipelinekit.NestedString(req, "metadata", "namespace") + "/" + pipelinekit.NestedString(req, "metadata", "name")
	cm["data"] = map[string]any{"request": from}
	return result{
		file:    "labels.yaml",
		objects: []any{cm},
		status: map[string]any{"labelsConfigMap": name + "-labels",
			"message": fmt.Sprintf("%d labels of %s copied to configmap %s/%s-labels", len(labels), from, objectNamespace, name)},
	}, nil
}

func deploymentStep(req map[string]any) (result, error) {
	name, err := requestName(req)
	if err != nil {
		return result{}, err
	}
	image, err := specString(req, "image")
	if err != nil {
		return result{}, err
	}
	if image == "" {
		image = defaultImage
	}
	d := object("apps/v1", "Deployment", name, objectNamespace, "deployment")
	selector := map[string]any{"app.kubernetes.io/name": name}
	d["spec"] = map[string]any{
		"replicas": 1,
		"selector": map[string]any{"matchLabels": selector},
		"template": map[string]any{
			"metadata": map[string]any{"labels": selector},
			"spec": map[string]any{
				"containers": []any{map[string]any{
					"name": "web", "image": image,
					"ports": []any{map[string]any{"containerPort": 8080}},
				}},
			},
		},
	}
	return result{
		file:    "deployment.yaml",
		objects: []any{d},
		status:  map[string]any{"deployment": name, "image": image, "message": fmt.Sprintf("deployment %s/%s requested with image %s", objectNamespace, name, image)},
	}, nil
}

// dependenciesStep runs in the Promise's own workflow: its input is the
// Promise, and what it writes goes to every destination the Promise
// selects.
func dependenciesStep(promise map[string]any) (result, error) {
	name := pipelinekit.NestedString(promise, "metadata", "name")
	if name == "" {
		return result{}, errors.New("metadata.name of the Promise is not set")
	}
	// A namespace of the Promise's own: a destination's dependencies may
	// not hold one object twice, so two Promises must not both make one.
	ns := name + "-deps"
	cm := object("v1", "ConfigMap", "promise-info", ns, "dependencies")
	cm["data"] = map[string]any{"promise": name}
	return result{
		file:    "dependencies.yaml",
		objects: []any{object("v1", "Namespace", ns, "", "dependencies"), cm},
		status:  map[string]any{"message": fmt.Sprintf("dependencies of promise %s written: namespace %s", name, ns)},
	}, nil
}

// requestName is spec.name, else metadata.name: it names a Namespace, so
// it must be a DNS label.
func requestName(req map[string]any) (string, error) {
	name, err := specString(req, "name")
	if err != nil {
		return "", err
	}
	field := "spec.name"
	if name == "" {
		name, field = pipelinekit.NestedString(req, "metadata", "name"), "metadata.name"
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return "", fmt.Errorf("%s %q cannot name the objects: %s", field, name, strings.Join(errs, "; "))
	}
	return name, nil
}

// specString is spec.<field> when it is a string, "" when it is absent.
func specString(req map[string]any, field string) (string, error) {
	switch v := pipelinekit.Nested(req, "spec", field).(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("spec.%s is a %T; want a string", field, v)
	}
}

// stringData is spec as ConfigMap data: strings as they are, anything
// else as JSON, since ConfigMap values are strings.
func stringData(spec map[string]any) (map[string]any, error) {
	data := map[string]any{}
	for k, v := range spec {
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			return nil, fmt.Errorf("spec.%s cannot be a ConfigMap key: %s", k, strings.Join(errs, "; "))
		}
		if s, ok := v.(string); ok {
			data[k] = s
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("spec.%s: %w", k, err)
		}
		data[k] = string(b)
	}
	return data, nil
}

// object is the start of a manifest, labelled with the step that wrote it.
func object(apiVersion, kind, name, namespace, step string) map[string]any {
	meta := map[string]any{"name": name, "labels": map[string]any{exampleLabel: step}}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
}
