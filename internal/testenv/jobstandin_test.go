package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const jobprogImage = "example.com/jobprog"

// startJobStandIn starts a control plane, a namespace "pipelines" with a
// ServiceAccount "pipeline" that may read and create ConfigMaps (and
// nothing else), a ConfigMap "input", a Secret "creds", and the stand-in
// with two images: the jobprog program as example.com/jobprog (user
// 65532) and the host's sh as example.com/shell (user 1000).
func startJobStandIn(t *testing.T) (client.Client, *JobStandIn) {
	t.Helper()
	// No CRDs: the stand-in needs only built-in kinds.
	cp, err := StartControlPlane(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Log(err)
		}
	})
	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "jobprog")
	build := exec.Command("go", "build", "-o", bin, "./internal/testenv/testdata/jobprog")
	build.Dir = RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building jobprog: %v\n%s", err, out)
	}
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pipelines"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "pipeline", Namespace: "pipelines"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "configmaps", Namespace: "pipelines"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pipeline", Namespace: "pipelines"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmaps"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "pipeline", Namespace: "pipelines"}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "input", Namespace: "pipelines"}, Data: map[string]string{"greeting": "hello"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "pipelines"}, Data: map[string][]byte{"token": []byte("s3cr3t")}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]Image{
		jobprogImage:        {Entrypoint: []string{"/jobprog"}, Files: map[string]string{"/jobprog": bin}, User: 65532, Group: 65532},
		"example.com/shell": {Files: map[string]string{"/bin/sh": sh}, User: 1000, Group: 1000},
	}
	s, err := StartJobStandIn(cp.Config, images, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Log(err)
		}
	})
	return c, s
}

// pipelineJob is a Job shaped as the router makes them: the pipeline's
// service account, non-root, the kratix emptyDirs mounted in every
// container, a configMap volume, init containers then one container.
func pipelineJob(name string, inits []corev1.Container, main corev1.Container) *batchv1.Job {
	mounts := []corev1.VolumeMount{{Name: "output", MountPath: "/kratix/output"}, {Name: "metadata", MountPath: "/kratix/metadata"},
		{Name: "settings", MountPath: "/settings", ReadOnly: true}}
	for i := range inits {
		inits[i].VolumeMounts = mounts
	}
	main.VolumeMounts = mounts
	emptyDir := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "pipelines"},
		Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: "pipeline",
			SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
			Volumes: []corev1.Volume{{Name: "output", VolumeSource: emptyDir}, {Name: "metadata", VolumeSource: emptyDir},
				{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "input"}}}}},
			InitContainers: inits,
			Containers:     []corev1.Container{main},
		}}},
	}
}

// waitJobFinished waits until the Job has a terminal condition and
// returns it with its Pod.
func waitJobFinished(t *testing.T, c client.Client, job *batchv1.Job) (*batchv1.Job, *corev1.Pod) {
	t.Helper()
	got := &batchv1.Job{}
	WaitFor(t, 60*time.Second, "the Job to finish", func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(job), got); err != nil {
			return false, err.Error()
		}
		return jobFinished(got), "conditions: " + conditionTypes(got)
	})
	pods := &corev1.PodList{}
	if err := c.List(context.Background(), pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("Job %s has %d Pods, want 1", job.Name, len(pods.Items))
	}
	return got, &pods.Items[0]
}

func conditionTypes(job *batchv1.Job) string {
	s := ""
	for _, c := range job.Status.Conditions {
		s += string(c.Type) + "=" + string(c.Status) + "(" + c.Reason + ") "
	}
	return s
}

func TestJobStandInRunsPipeline(t *testing.T) {
	c, s := startJobStandIn(t)
	env := []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "JOB_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['batch.kubernetes.io/job-name']"}}},
		{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "input"}, Key: "greeting"}}},
	}
	job := pipelineJob("run", []corev1.Container{
		{Name: "first", Image: jobprogImage + ":v1", Env: append(env, corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}}),
			EnvFrom: []corev1.EnvFromSource{{Prefix: "IN_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "input"}}}},
			Args: []string{"write", "/kratix/output/first.txt", "$POD_NAME $GREETING $JOB_NAME", "whoami", "/kratix/metadata/uid",
				"write", "/kratix/metadata/env", "$TOKEN $IN_greeting"}},
		{Name: "second", Image: jobprogImage + "@sha256:0123", Command: []string{"/jobprog"},
			Args: []string{"copy", "/kratix/output/first.txt", "/kratix/metadata/copied.txt", "copy", "/settings/greeting", "/kratix/metadata/greeting",
				"get-configmap", "input", "forbidden-secrets"}},
	}, corev1.Container{Name: "writer", Image: jobprogImage, Env: env,
		Args: []string{"publish", "$(JOB_NAME)-output", "/kratix/output", "publish", "$(JOB_NAME)-metadata", "/kratix/metadata"}})
	if err := c.Create(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	got, pod := waitJobFinished(t, c, job)
	defer func() {
		for _, name := range []string{"first", "second", "writer"} {
			if t.Failed() {
				t.Logf("%s log:\n%s", name, s.Logs(pod.Namespace, pod.Name, name))
			}
		}
	}()
	if types := conditionTypes(got); types != "SuccessCriteriaMet=True(CompletionsReached) Complete=True(CompletionsReached) " {
		t.Fatalf("Job conditions %s", types)
	}
	if got.Status.Succeeded != 1 || got.Status.Active != 0 || got.Status.StartTime == nil || got.Status.CompletionTime == nil {
		t.Errorf("Job status %+v", got.Status)
	}
	if pod.Status.Phase != corev1.PodSucceeded || !metav1.IsControlledBy(pod, got) || pod.Labels[batchv1.ControllerUidLabel] != string(got.UID) {
		t.Errorf("Pod %s: phase %s, labels %v, owners %v", pod.Name, pod.Status.Phase, pod.Labels, pod.OwnerReferences)
	}
	for _, st := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		if term := st.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
			t.Errorf("container %s state %+v", st.Name, st.State)
		}
	}
	want := pod.Name + " hello run"
	assertConfigMap(t, c, "run-output", map[string]string{"first.txt": want})
	assertConfigMap(t, c, "run-metadata", map[string]string{"copied.txt": want, "greeting": "hello", "uid": "65532", "env": "s3cr3t hello"})
}

func assertConfigMap(t *testing.T, c client.Client, name string, want map[string]string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "pipelines", Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if cm.Data[k] != v {
			t.Errorf("ConfigMap %s: %s = %q, want %q", name, k, cm.Data[k], v)
		}
	}
}

func TestJobStandInFailingContainer(t *testing.T) {
	c, s := startJobStandIn(t)
	job := pipelineJob("broken", []corev1.Container{
		{Name: "first", Image: jobprogImage, Args: []string{"write", "/kratix/output/x", "x", "fail", "3", "bad input: no name"}},
		{Name: "second", Image: jobprogImage, Args: []string{"write", "/kratix/output/y", "y"}},
	}, corev1.Container{Name: "writer", Image: jobprogImage, Args: []string{"write", "/kratix/output/z", "z"}})
	if err := c.Create(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	got, pod := waitJobFinished(t, c, job)
	if types := conditionTypes(got); types != "FailureTarget=True(BackoffLimitExceeded) Failed=True(BackoffLimitExceeded) " {
		t.Fatalf("Job conditions %s", types)
	}
	if got.Status.Failed != 1 || got.Status.Active != 0 || got.Status.CompletionTime != nil {
		t.Errorf("Job status %+v", got.Status)
	}
	if pod.Status.Phase != corev1.PodFailed {
		t.Errorf("Pod phase %s", pod.Status.Phase)
	}
	term := pod.Status.InitContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 3 || term.Reason != "Error" || term.Message != "bad input: no name" {
		t.Errorf("first container state %+v", pod.Status.InitContainerStatuses[0].State)
	}
	if st := pod.Status.InitContainerStatuses[1].State; st.Waiting == nil {
		t.Errorf("second container ran after the first failed: %+v", st)
	}
	if logs := s.Logs(pod.Namespace, pod.Name, "first"); logs != "bad input: no name\n" {
		t.Errorf("first container's log %q", logs)
	}
}

// TestJobStandInCannotRun covers containers that never start: an image
// missing from the table, and a command the image does not hold.
func TestJobStandInCannotRun(t *testing.T) {
	c, _ := startJobStandIn(t)
	for name, want := range map[string]struct {
		container corev1.Container
		reason    string
	}{
		"no-image":   {corev1.Container{Name: "main", Image: "example.com/missing:v1"}, "ErrImagePull"},
		"no-command": {corev1.Container{Name: "main", Image: jobprogImage, Command: []string{"/bin/yq"}}, "StartError"},
	} {
		job := pipelineJob(name, nil, want.container)
		if err := c.Create(context.Background(), job); err != nil {
			t.Fatal(err)
		}
		got, pod := waitJobFinished(t, c, job)
		if !conditionTrue(got, batchv1.JobFailed) {
			t.Errorf("%s: Job conditions %s", name, conditionTypes(got))
		}
		term := pod.Status.ContainerStatuses[0].State.Terminated
		if term == nil || term.Reason != want.reason || term.ExitCode != 128 || term.Message == "" {
			t.Errorf("%s: container state %+v", name, pod.Status.ContainerStatuses[0].State)
		}
	}
}

func conditionTrue(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// TestJobStandInDeletedJob checks that deleting a running Job kills its
// Pod's processes, and that a Job whose service account does not exist
// yet waits for it, as Pod admission makes it.
func TestJobStandInDeletedJob(t *testing.T) {
	c, s := startJobStandIn(t)
	ctx := context.Background()
	job := pipelineJob("slow", nil, corev1.Container{Name: "main", Image: jobprogImage,
		Args: []string{"pid", "/kratix/output/pid", "sleep", "600"}})
	job.Spec.Template.Spec.ServiceAccountName = "late"
	if err := c.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, "the stand-in to hold the Pod back", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(s.dir, "jobstandin.log"))
		return strings.Contains(string(b), `service account "late"`), string(b)
	})
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "pipelines"}}); err != nil {
		t.Fatal(err)
	}
	var pid int
	WaitFor(t, 30*time.Second, "the container to start", func() (bool, string) {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil || len(pods.Items) == 0 {
			return false, fmt.Sprintf("no Pod: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(s.podDir("pipelines", pods.Items[0].Name), "volumes", "output", "pid"))
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil, fmt.Sprintf("pid %q", b)
	})
	if err := c.Delete(ctx, job); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, "the container's process to go", func() (bool, string) {
		err := syscall.Kill(pid, 0)
		return errors.Is(err, syscall.ESRCH), fmt.Sprintf("signal 0 to %d: %v", pid, err)
	})
}

// TestJobStandInShellImage runs a shell-script container, as most Kratix
// pipelines are: command found on the image's PATH, $(VAR) references
// expanded, workingDir honoured, and no token when automount is off.
func TestJobStandInShellImage(t *testing.T) {
	c, s := startJobStandIn(t)
	script := `echo '$(MSG) $(UNSET) $$(MSG)' > msg; pwd >> msg; id -u >> msg
if [ -e /var/run/secrets/kubernetes.io/serviceaccount/token ]; then echo token >> msg; fi`
	job := pipelineJob("shell", nil, corev1.Container{Name: "script", Image: "example.com/shell:3.20", WorkingDir: "/kratix/output",
		Env: []corev1.EnvVar{{Name: "MSG", Value: "hi"}}, Command: []string{"sh", "-c", script}})
	job.Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(false)
	if err := c.Create(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	got, pod := waitJobFinished(t, c, job)
	if !conditionTrue(got, batchv1.JobComplete) {
		t.Fatalf("Job conditions %s; Pod status %+v; log %s", conditionTypes(got), pod.Status, s.Logs(pod.Namespace, pod.Name, "script"))
	}
	b, err := os.ReadFile(filepath.Join(s.podDir(pod.Namespace, pod.Name), "volumes", "output", "msg"))
	if want := "hi $(UNSET) $(MSG)\n/kratix/output\n1000\n"; string(b) != want || err != nil {
		t.Errorf("the script wrote %q (%v), want %q", b, err, want)
	}
}
