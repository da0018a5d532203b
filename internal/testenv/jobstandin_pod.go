package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The paths the kubelet gives every container.
const (
	serviceAccountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	defaultPath        = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// podRun is one run of a Pod: where its files are on this machine and the
// status the kubelet reports for it.
type podRun struct {
	pod     *corev1.Pod
	dir     string
	volumes map[string]string // volume name -> host directory
	saDir   string            // "" when no token is mounted
	status  corev1.PodStatus
}

// runPod runs pod's init containers in order, stopping at the first that
// fails (restartPolicy Never), then its containers, and reports whether
// all succeeded. Statuses are written after every container, as the
// kubelet writes them.
func (s *JobStandIn) runPod(ctx context.Context, pod *corev1.Pod) (bool, error) {
	r := &podRun{pod: pod, dir: s.podDir(pod.Namespace, pod.Name)}
	now := metav1.Now()
	r.status = corev1.PodStatus{Phase: corev1.PodPending, StartTime: &now}
	for _, c := range pod.Spec.InitContainers {
		r.status.InitContainerStatuses = append(r.status.InitContainerStatuses, waiting(c, "PodInitializing"))
	}
	for _, c := range pod.Spec.Containers {
		r.status.ContainerStatuses = append(r.status.ContainerStatuses, waiting(c, "PodInitializing"))
	}
	if err := s.writePodStatus(ctx, r); err != nil {
		return false, err
	}
	if err := s.preparePod(ctx, r); err != nil {
		// The kubelet would retry mounting; failing tells the test why.
		r.status.Phase, r.status.Reason, r.status.Message = corev1.PodFailed, "FailedMount", err.Error()
		return false, s.writePodStatus(ctx, r)
	}
	for i, c := range pod.Spec.InitContainers {
		r.status.InitContainerStatuses[i] = s.runContainer(ctx, r, c)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if r.status.InitContainerStatuses[i].State.Terminated.ExitCode != 0 {
			r.status.Phase = corev1.PodFailed
			return false, s.writePodStatus(ctx, r)
		}
		if err := s.writePodStatus(ctx, r); err != nil {
			return false, err
		}
	}
	return s.runContainers(ctx, r)
}

// runContainers runs the Pod's (main) containers one after another; all
// run, whatever the others' outcome, as they would side by side.
func (s *JobStandIn) runContainers(ctx context.Context, r *podRun) (bool, error) {
	r.status.Phase = corev1.PodRunning
	if err := s.writePodStatus(ctx, r); err != nil {
		return false, err
	}
	succeeded := true
	for i, c := range r.pod.Spec.Containers {
		r.status.ContainerStatuses[i] = s.runContainer(ctx, r, c)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		succeeded = succeeded && r.status.ContainerStatuses[i].State.Terminated.ExitCode == 0
		if i < len(r.pod.Spec.Containers)-1 {
			if err := s.writePodStatus(ctx, r); err != nil {
				return false, err
			}
		}
	}
	r.status.Phase = corev1.PodSucceeded
	if !succeeded {
		r.status.Phase = corev1.PodFailed
	}
	return succeeded, s.writePodStatus(ctx, r)
}

func waiting(c corev1.Container, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptr.To(false),
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func (s *JobStandIn) writePodStatus(ctx context.Context, r *podRun) error {
	cur := &corev1.Pod{}
	if err := s.reader.Get(ctx, client.ObjectKeyFromObject(r.pod), cur); err != nil {
		return fmt.Errorf("reading Pod %s/%s: %w", r.pod.Namespace, r.pod.Name, err)
	}
	old := cur.DeepCopy()
	cur.Status = *r.status.DeepCopy()
	if err := s.client.Status().Patch(ctx, cur, client.MergeFrom(old)); err != nil {
		return fmt.Errorf("writing the status of Pod %s/%s: %w", r.pod.Namespace, r.pod.Name, err)
	}
	return nil
}

// preparePod makes the Pod's directory: one directory per volume, filled
// as the kubelet fills it, and the service account token directory.
func (s *JobStandIn) preparePod(ctx context.Context, r *podRun) error {
	r.volumes = map[string]string{}
	for _, v := range r.pod.Spec.Volumes {
		dir := filepath.Join(r.dir, "volumes", v.Name)
		if err := s.fillVolume(ctx, r.pod.Namespace, v, dir); err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
		r.volumes[v.Name] = dir
	}
	automount := r.pod.Spec.AutomountServiceAccountToken
	if automount == nil {
		// The Pod's field, when set, overrides its ServiceAccount's.
		sa, err := s.clientset.CoreV1().ServiceAccounts(r.pod.Namespace).Get(ctx, r.pod.Spec.ServiceAccountName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading service account %s/%s: %w", r.pod.Namespace, r.pod.Spec.ServiceAccountName, err)
		}
		automount = sa.AutomountServiceAccountToken
	}
	if !ptr.Deref(automount, true) {
		return nil
	}
	r.saDir = filepath.Join(r.dir, "serviceaccount")
	return s.writeServiceAccount(ctx, r.pod, r.saDir)
}

// fillVolume makes an emptyDir, configMap or secret volume in dir.
func (s *JobStandIn) fillVolume(ctx context.Context, ns string, v corev1.Volume, dir string) error {
	// World-writable, as the kubelet makes emptyDirs, so any uid can use it.
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	switch {
	case v.EmptyDir != nil:
		return nil
	case v.ConfigMap != nil:
		cm := &corev1.ConfigMap{}
		if err := s.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: v.ConfigMap.Name}, cm); err != nil {
			return optional(err, v.ConfigMap.Optional)
		}
		data := map[string][]byte{}
		for k, val := range cm.Data {
			data[k] = []byte(val)
		}
		for k, val := range cm.BinaryData {
			data[k] = val
		}
		return writeKeys(dir, data, v.ConfigMap.Items, v.ConfigMap.DefaultMode)
	case v.Secret != nil:
		sec := &corev1.Secret{}
		if err := s.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: v.Secret.SecretName}, sec); err != nil {
			return optional(err, v.Secret.Optional)
		}
		return writeKeys(dir, sec.Data, v.Secret.Items, v.Secret.DefaultMode)
	}
	return fmt.Errorf("the Job stand-in supports emptyDir, configMap and secret volumes only")
}

// optional is nil for a missing object the volume or env marks optional.
func optional(err error, opt *bool) error {
	if client.IgnoreNotFound(err) == nil && ptr.Deref(opt, false) {
		return nil
	}
	return err
}

// writeKeys writes data's keys as files in dir, or only items (key ->
// path) when given, with mode (default 0644).
func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath, mode *int32) error {
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("no key %q", it.Key)
		}
		m := ptr.Deref(it.Mode, ptr.Deref(mode, 0o644))
		path := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, val, os.FileMode(m)); err != nil {
			return err
		}
		if err := os.Chmod(path, os.FileMode(m)); err != nil {
			return err
		}
	}
	return nil
}

// writeServiceAccount writes what the kubelet's kube-api-access volume
// holds: a token for the Pod's service account bound to the Pod (from the
// TokenRequest API), the API server's CA and the namespace.
func (s *JobStandIn) writeServiceAccount(ctx context.Context, pod *corev1.Pod, dir string) error {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](3607),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	tr, err := s.clientset.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, tr, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token for service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeKeys(dir, map[string][]byte{
		"token": []byte(tr.Status.Token), "ca.crt": s.cfg.CAData, "namespace": []byte(pod.Namespace),
	}, nil, nil)
}
