package workflow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Workflow types and actions, as Kratix names them in KRATIX_WORKFLOW_TYPE
// and KRATIX_WORKFLOW_ACTION.
const (
	TypeResource    = "resource"
	TypePromise     = "promise"
	ActionConfigure = "configure"
	ActionDelete    = "delete"
)

// The contract's directories.
const (
	InputDir    = "/kratix/input"
	OutputDir   = "/kratix/output"
	MetadataDir = "/kratix/metadata"
	// ObjectFile is the object a pipeline works on, under InputDir.
	ObjectFile = "object.yaml"
)

// Labels and annotations on the router's Jobs.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "switchyard"
	// OwnerUIDLabel carries the UID of the request or Promise the Job
	// runs for: the router finds a workflow's Jobs by it.
	OwnerUIDLabel = "switchyard.dev/workflow-owner"
	RunLabel      = "switchyard.dev/workflow-run"
	// OutputLabel is on the WorkflowOutput "pipeline write" creates, with the
	// UID of the Job whose output it holds.
	OutputLabel = "switchyard.dev/workflow-output"

	PipelineIndexAnnotation = "switchyard.dev/pipeline-index"
	// ObjectAnnotation names the object a Job runs for (Object.Key): a
	// request's Jobs run in the router's namespace, where an
	// ownerReference to the request cannot point.
	ObjectAnnotation  = "switchyard.dev/workflow-object"
	AttemptAnnotation = "switchyard.dev/attempt"
	InputsAnnotation  = "switchyard.dev/workflow-inputs"

	// Kratix's labels, for tools that select Kratix Jobs.
	WorkflowTypeLabel   = "kratix.io/workflow-type"
	WorkflowActionLabel = "kratix.io/workflow-action"
	PromiseNameLabel    = "kratix.io/promise-name"
	PipelineNameLabel   = "kratix.io/pipeline-name"
	ResourceNameLabel   = "kratix.io/resource-name"

	// ManualReconciliationLabel on a request or Promise asks for its
	// configure workflow to run again; the router removes it.
	ManualReconciliationLabel = "kratix.io/manual-reconciliation"
)

// Env names of the contract, and the two the writer adds for itself.
const (
	EnvJobName = "SWITCHYARD_JOB_NAME"
	EnvJobUID  = "SWITCHYARD_JOB_UID"
	// EnvJobNamespace is where the writer creates its WorkflowOutput.
	EnvJobNamespace = "SWITCHYARD_JOB_NAMESPACE"
)

// Object is what a workflow runs for: a request or a Promise.
type Object struct {
	GVK           schema.GroupVersionKind
	Plural        string
	Namespace     string
	Name          string
	UID           string
	ClusterScoped bool
}

// Key names o in ObjectAnnotation: <Kind>.<group>/<namespace>/<name>.
func (o Object) Key() string {
	return o.GVK.GroupKind().String() + "/" + o.Namespace + "/" + o.Name
}

// ObjectOf reads ObjectAnnotation: the kind (as Kind.group), namespace and
// name of the object a Job runs for.
func ObjectOf(annotations map[string]string) (kind, namespace, name string, ok bool) {
	parts := strings.SplitN(annotations[ObjectAnnotation], "/", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// Run is one attempt of one Pipeline of a workflow run.
type Run struct {
	Type, Action string
	Promise      string
	Object       Object
	Pipeline     v1alpha1.Pipeline
	// Index is the Pipeline's place in its list of Pipelines; Attempt
	// counts from 1.
	Index, Pipelines, Attempt int
	// ID names the workflow run (all its pipelines), Seq orders it among
	// the object's runs; Inputs is the digest of what it ran from.
	ID, Inputs string
	Seq        int
	// Namespace the Job runs in: the router's, out of the tenants' reach.
	Namespace string
	// Image is the router's image, for the reader and the writer.
	Image string
	// Owner, when set, owns the Job: a Promise (cluster-scoped). A request
	// cannot, being in another namespace.
	Owner metav1.OwnerReference
}

// JobName is the Job's name: readable parts, cut to fit the 63
// characters a label value (batch.kubernetes.io/job-name) allows, and a
// digest of the whole identity, so names never collide.
func (r Run) JobName() string {
	id := strings.Join([]string{r.Object.UID, r.Type, r.Action, r.ID, r.Pipeline.Metadata.Name, strconv.Itoa(r.Attempt)}, "/")
	sum := sha256.Sum256([]byte(id))
	return fmt.Sprintf("%s-%s-%s-%s", labelPart(r.Promise, 14), labelPart(r.Object.Name, 18), labelPart(r.Pipeline.Metadata.Name, 14), hex.EncodeToString(sum[:])[:12])
}

// labelPart is s cut to n characters for a DNS-1123 label: Promise and
// object names may be DNS subdomains, whose dots a label refuses.
func labelPart(s string, n int) string {
	return cut(strings.ReplaceAll(s, ".", "-"), n)
}

// setLabel sets labels[k] to v when v is a valid label value: Promise and
// object names, DNS subdomains, may be longer than a label value's 63
// characters, and are then left out rather than cut.
func setLabel(labels map[string]string, k, v string) {
	if len(validation.IsValidLabelValue(v)) == 0 {
		labels[k] = v
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Trim(s, "-.")
}

// ServiceAccountName is the ServiceAccount a Pipeline runs as, one per
// Promise, workflow and Pipeline in each namespace, as Kratix names it.
func ServiceAccountName(promise, typ, action, pipeline string) string {
	name := fmt.Sprintf("%s-%s-%s-%s", promise, typ, action, pipeline)
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return cut(name, 50) + "-" + hex.EncodeToString(sum[:])[:12]
}

// Job returns the Job for r.
func Job(r Run) *batchv1.Job {
	labels := map[string]string{
		ManagedByLabel:      ManagedBy,
		OwnerUIDLabel:       r.Object.UID,
		RunLabel:            r.ID,
		WorkflowTypeLabel:   r.Type,
		WorkflowActionLabel: r.Action,
		PipelineNameLabel:   r.Pipeline.Metadata.Name,
	}
	setLabel(labels, PromiseNameLabel, r.Promise)
	if r.Type == TypeResource {
		setLabel(labels, ResourceNameLabel, r.Object.Name)
	}
	for k, v := range r.Pipeline.Metadata.Labels {
		// The name labels stay ours even when left out.
		if _, ours := labels[k]; !ours && k != PromiseNameLabel && k != ResourceNameLabel {
			labels[k] = v
		}
	}
	annotations := map[string]string{
		PipelineIndexAnnotation: strconv.Itoa(r.Index),
		AttemptAnnotation:       strconv.Itoa(r.Attempt),
		InputsAnnotation:        r.Inputs,
		PipelinesAnnotation:     strconv.Itoa(r.Pipelines),
		SeqAnnotation:           strconv.Itoa(r.Seq),
	}
	for k, v := range r.Pipeline.Metadata.Annotations {
		if _, ours := annotations[k]; !ours {
			annotations[k] = v
		}
	}
	env := contractEnv(r)
	volumes, _ := Volumes(r.Pipeline) // Validate refused bad ones
	var inits []corev1.Container
	inits = append(inits, routerContainer("reader", r.Image, "read", env))
	for _, c := range r.Pipeline.Spec.Containers {
		inits = append(inits, pipelineContainer(c, env))
	}
	writer := routerContainer("writer", r.Image, "write", append(env,
		fieldEnv(EnvJobName, "metadata.labels['batch.kubernetes.io/job-name']"),
		fieldEnv(EnvJobUID, "metadata.labels['batch.kubernetes.io/controller-uid']"),
		fieldEnv(EnvJobNamespace, "metadata.namespace")))
	annotations[ObjectAnnotation] = r.Object.Key()
	var owners []metav1.OwnerReference
	if r.Owner.UID != "" {
		owners = []metav1.OwnerReference{r.Owner}
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name: r.JobName(), Namespace: r.Namespace, Labels: labels, Annotations: annotations,
			OwnerReferences: owners,
		},
		Spec: batchv1.JobSpec{
			// The router retries, with backoff, and reports each failure.
			BackoffLimit: ptr(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					// The account does not mount its token by default (Access).
					AutomountServiceAccountToken: ptr(true),
					ServiceAccountName:           ServiceAccountName(r.Promise, r.Type, r.Action, r.Pipeline.Metadata.Name),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					ImagePullSecrets: r.Pipeline.Spec.ImagePullSecrets,
					InitContainers:   inits,
					Containers:       []corev1.Container{writer},
					Volumes:          append(contractVolumes(), volumes...),
				},
			},
		},
	}
}

// Reserved names: the contract's volumes, and the router's containers.
var (
	reservedVolumes    = []string{"kratix-input", "kratix-output", "kratix-metadata"}
	reservedContainers = []string{"reader", "writer"}
)

func contractVolumes() []corev1.Volume {
	out := make([]corev1.Volume, len(reservedVolumes))
	for i, n := range reservedVolumes {
		out[i] = corev1.Volume{Name: n, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	return out
}

func contractMounts() []corev1.VolumeMount {
	return []corev1.VolumeMount{
		{Name: "kratix-input", MountPath: InputDir},
		{Name: "kratix-output", MountPath: OutputDir},
		{Name: "kratix-metadata", MountPath: MetadataDir},
	}
}

func contractEnv(r Run) []corev1.EnvVar {
	o := r.Object
	return []corev1.EnvVar{
		{Name: "KRATIX_WORKFLOW_TYPE", Value: r.Type},
		{Name: "KRATIX_WORKFLOW_ACTION", Value: r.Action},
		{Name: "KRATIX_PROMISE_NAME", Value: r.Promise},
		{Name: "KRATIX_PIPELINE_NAME", Value: r.Pipeline.Metadata.Name},
		{Name: "KRATIX_OBJECT_KIND", Value: o.GVK.Kind},
		{Name: "KRATIX_OBJECT_GROUP", Value: o.GVK.Group},
		{Name: "KRATIX_OBJECT_VERSION", Value: o.GVK.Version},
		{Name: "KRATIX_OBJECT_NAME", Value: o.Name},
		{Name: "KRATIX_OBJECT_NAMESPACE", Value: o.Namespace},
		{Name: "KRATIX_CRD_PLURAL", Value: o.Plural},
		{Name: "KRATIX_CLUSTER_SCOPED", Value: strconv.FormatBool(o.ClusterScoped)},
	}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func routerContainer(name, image, verb string, env []corev1.EnvVar) corev1.Container {
	return corev1.Container{
		Name: name, Image: image, Args: []string{"pipeline", verb},
		Env:             env,
		VolumeMounts:    contractMounts(),
		Resources:       defaultResources(),
		SecurityContext: restricted(),
	}
}

func pipelineContainer(c v1alpha1.Container, env []corev1.EnvVar) corev1.Container {
	res := defaultResources()
	if c.Resources != nil {
		res = *c.Resources
	}
	return corev1.Container{
		Name: c.Name, Image: c.Image, Command: c.Command, Args: c.Args, WorkingDir: c.WorkingDir,
		// The contract's variables come last, so a Pipeline cannot change
		// what it is told about its object.
		Env:             append(append([]corev1.EnvVar{}, c.Env...), env...),
		EnvFrom:         c.EnvFrom,
		VolumeMounts:    append(contractMounts(), c.VolumeMounts...),
		ImagePullPolicy: c.ImagePullPolicy,
		Resources:       res,
		SecurityContext: restricted(),
	}
}

// restricted is the Pod Security Standard "restricted" container context.
func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             ptr(true),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// defaultResources are Kratix's defaults for pipeline containers.
func defaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
}

// Validate says what in pipelines cannot run: names used twice, the
// contract's reserved volume and container names, mounts over /kratix.
func Validate(field string, pipelines []v1alpha1.Pipeline) error {
	seen := map[string]bool{}
	for i, p := range pipelines {
		at := fmt.Sprintf("%s[%d]", field, i)
		if seen[p.Metadata.Name] {
			return fmt.Errorf("%s: pipeline name %q is used twice", at, p.Metadata.Name)
		}
		seen[p.Metadata.Name] = true
		volumes, err := Volumes(p)
		if err != nil {
			return fmt.Errorf("%s.spec.volumes: %w", at, err)
		}
		for _, v := range volumes {
			if slices.Contains(reservedVolumes, v.Name) {
				return fmt.Errorf("%s.spec.volumes: %q is reserved for the contract's directories", at, v.Name)
			}
		}
		if err := checkVolumeKinds(volumes); err != nil {
			return fmt.Errorf("%s.spec.volumes: %w", at, err)
		}
		names := map[string]bool{}
		for j, c := range p.Spec.Containers {
			cat := fmt.Sprintf("%s.spec.containers[%d]", at, j)
			if slices.Contains(reservedContainers, c.Name) || names[c.Name] {
				return fmt.Errorf("%s: container name %q is reserved or used twice", cat, c.Name)
			}
			names[c.Name] = true
			for _, m := range c.VolumeMounts {
				// The runtime cleans the path: //kratix/output is /kratix/output.
				if mp := path.Clean(m.MountPath); mp == "/kratix" || strings.HasPrefix(mp, "/kratix/") {
					return fmt.Errorf("%s.volumeMounts: %s is the contract's; mount elsewhere", cat, m.MountPath)
				}
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "KRATIX_") {
					return fmt.Errorf("%s.env: %s is set by the router", cat, e.Name)
				}
			}
		}
	}
	return nil
}

// Volumes decodes a Pipeline's volumes as core/v1 Volumes, refusing a
// field core/v1 does not know by name rather than dropping it.
func Volumes(p v1alpha1.Pipeline) ([]corev1.Volume, error) {
	out := make([]corev1.Volume, len(p.Spec.Volumes))
	for i, raw := range p.Spec.Volumes {
		dec := json.NewDecoder(bytes.NewReader(raw.Raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out[i]); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if out[i].Name == "" {
			return nil, fmt.Errorf("[%d]: a volume needs a name", i)
		}
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
