package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// hostTools are the util-linux and shell programs that set up a
// container's mount namespace, found once so a container's PATH cannot
// change them.
type hostTools struct{ unshare, sh, mount, mkdir, setpriv string }

func findHostTools() (hostTools, error) {
	var t hostTools
	for name, p := range map[string]*string{"unshare": &t.unshare, "sh": &t.sh, "mount": &t.mount, "mkdir": &t.mkdir, "setpriv": &t.setpriv} {
		bin, err := exec.LookPath(name)
		if err != nil {
			return t, fmt.Errorf("the Job stand-in runs containers with %s (util-linux): %w", name, err)
		}
		*p = bin
	}
	return t, nil
}

// maxTerminationMessage is the kubelet's limit on a termination message.
const maxTerminationMessage = 4096

// containerFailure is why a container could not start: the kubelet's
// reason and message, reported with exit code 128.
type containerFailure struct{ reason, message string }

func (f *containerFailure) Error() string { return f.reason + ": " + f.message }

// runContainer runs one container to its end and returns its terminated
// status.
//
// The container is a local process, started as
//
//	unshare --mount --propagation private -- sh -c <script> sh <argv...>
//
// where the script, inside the new private mount namespace, bind-mounts
// each volume at its mountPath, the service account directory at
// /var/run/secrets/kubernetes.io/serviceaccount, a per-container file at
// the terminationMessagePath and the image's files at their paths in the
// image, then changes to workingDir and execs argv (through setpriv when
// the container runs as another user). The mounts are seen by the
// container only. A mount needs a mount point, so missing ones are created
// on the host as empty directories or files (/kratix/input, /router,
// /dev/termination-log): nothing is ever written into them.
func (s *JobStandIn) runContainer(ctx context.Context, r *podRun, c corev1.Container) corev1.ContainerStatus {
	st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptr.To(false)}
	start := metav1.Now()
	code, err := s.exec(ctx, r, c)
	var failed *containerFailure
	term := &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: "Completed", StartedAt: start, FinishedAt: metav1.Now()}
	switch {
	case errors.As(err, &failed):
		term.ExitCode, term.Reason, term.Message = 128, failed.reason, failed.message
	case err != nil:
		term.ExitCode, term.Reason, term.Message = 128, "StartError", err.Error()
	default:
		term.Message = s.terminationMessage(r, c, code)
		if code != 0 {
			term.Reason = "Error"
		}
	}
	s.log.Printf("Container %s of Pod %s/%s ended: %s, exit code %d: %s", c.Name, r.pod.Namespace, r.pod.Name, term.Reason, term.ExitCode, term.Message)
	st.State.Terminated = term
	return st
}

// exec runs the container's process and returns its exit code.
func (s *JobStandIn) exec(ctx context.Context, r *podRun, c corev1.Container) (int, error) {
	img, ok := s.image(c.Image)
	if !ok {
		return 0, &containerFailure{"ErrImagePull", fmt.Sprintf("image %q is not in the Job stand-in's image table", c.Image)}
	}
	env, err := s.env(ctx, r.pod, c)
	if err != nil {
		return 0, &containerFailure{"CreateContainerConfigError", err.Error()}
	}
	uid, gid, err := runAs(r.pod, c, img)
	if err != nil {
		return 0, &containerFailure{"CreateContainerConfigError", err.Error()}
	}
	argv, err := command(c, img, env)
	if err != nil {
		return 0, &containerFailure{"StartError", err.Error()}
	}
	mounts, err := s.mounts(r, c, img)
	if err != nil {
		return 0, err
	}
	logs := filepath.Join(r.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return 0, err
	}
	out, err := os.OpenFile(filepath.Join(logs, c.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	script := s.script(mounts, c.WorkingDir, uid, gid, c.SecurityContext)
	cmd := exec.CommandContext(ctx, s.tools.unshare, append([]string{"--mount", "--propagation", "private", "--", s.tools.sh, "-c", script, "sh"}, argv...)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	// Its own process group, so that killing it reaches what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil // as a shell and the kubelet report it
		}
		return exit.ExitCode(), nil
	}
	return 0, err
}

// image finds ref in the table, as written or without its tag or digest.
func (s *JobStandIn) image(ref string) (Image, bool) {
	if img, ok := s.images[ref]; ok {
		return img, true
	}
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	img, ok := s.images[name]
	return img, ok
}

// command is the container's argv as the runtime builds it: command (or
// the image's entrypoint) and args, with $(VAR) references expanded, and
// the program found among the image's files.
func command(c corev1.Container, img Image, env []string) ([]string, error) {
	vars := envMap(env)
	argv := expandAll(c.Command, vars)
	if len(c.Command) == 0 {
		argv = append([]string(nil), img.Entrypoint...)
	}
	argv = append(argv, expandAll(c.Args, vars)...)
	if len(argv) == 0 {
		return nil, errors.New("no command specified")
	}
	prog := argv[0]
	if !path.IsAbs(prog) {
		for _, d := range filepath.SplitList(ptr.Deref(lookupEnv(vars, "PATH"), defaultPath)) {
			if _, ok := img.Files[path.Join(d, prog)]; ok {
				prog = path.Join(d, prog)
				break
			}
		}
	}
	if _, ok := img.Files[prog]; !ok {
		return nil, fmt.Errorf("exec: %q: executable file not found in the image", argv[0])
	}
	argv[0] = prog
	return argv, nil
}

// runAs is the uid and gid the container runs as: its securityContext's,
// else the Pod's, else the image's; runAsNonRoot refuses uid 0, as the
// kubelet does.
func runAs(pod *corev1.Pod, c corev1.Container, img Image) (int64, int64, error) {
	uid, gid, nonRoot := img.User, img.Group, false
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid, nonRoot = ptr.Deref(psc.RunAsUser, uid), ptr.Deref(psc.RunAsGroup, gid), ptr.Deref(psc.RunAsNonRoot, false)
	}
	if sc := c.SecurityContext; sc != nil {
		uid, gid, nonRoot = ptr.Deref(sc.RunAsUser, uid), ptr.Deref(sc.RunAsGroup, gid), ptr.Deref(sc.RunAsNonRoot, nonRoot)
	}
	if nonRoot && uid == 0 {
		return 0, 0, errors.New("container has runAsNonRoot and image will run as root (give the Image a User or the Pod a runAsUser)")
	}
	return uid, gid, nil
}

// mount is one bind mount: a host file or directory at a path in the
// container.
type mount struct {
	source, target string
	readOnly       bool
}

// mounts lists the container's bind mounts and makes their mount points.
func (s *JobStandIn) mounts(r *podRun, c corev1.Container, img Image) ([]mount, error) {
	var ms []mount
	for p, host := range img.Files {
		ms = append(ms, mount{source: host, target: p, readOnly: true})
	}
	covered := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		dir, ok := r.volumes[vm.Name]
		if !ok {
			return nil, &containerFailure{"CreateContainerConfigError", fmt.Sprintf("volumeMount %q names no volume", vm.Name)}
		}
		src := filepath.Join(dir, vm.SubPath)
		if err := os.MkdirAll(src, 0o777); err != nil {
			return nil, err
		}
		ms = append(ms, mount{source: src, target: vm.MountPath, readOnly: vm.ReadOnly})
		covered[path.Clean(vm.MountPath)] = true
	}
	if r.saDir != "" && !covered[serviceAccountPath] {
		ms = append(ms, mount{source: r.saDir, target: serviceAccountPath, readOnly: true})
	}
	termPath := c.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	termFile := s.terminationFile(r, c)
	if err := os.MkdirAll(filepath.Dir(termFile), 0o755); err != nil {
		return nil, err
	}
	// Writable by whichever uid the container runs as.
	if err := os.WriteFile(termFile, nil, 0o666); err != nil {
		return nil, err
	}
	if err := os.Chmod(termFile, 0o666); err != nil {
		return nil, err
	}
	ms = append(ms, mount{source: termFile, target: termPath})
	for _, m := range ms {
		if err := mountPoint(m); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// mountPoint makes m's target on the host if it is missing: a directory
// for a directory, an empty file for a file.
func mountPoint(m mount) error {
	fi, err := os.Stat(m.source)
	if err != nil {
		return fmt.Errorf("mount source %s: %w", m.source, err)
	}
	if _, err := os.Stat(m.target); err == nil {
		return nil
	}
	if fi.IsDir() {
		return os.MkdirAll(m.target, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(m.target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(m.target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("making mount point %s: %w", m.target, err)
	}
	return f.Close()
}

func (s *JobStandIn) terminationFile(r *podRun, c corev1.Container) string {
	return filepath.Join(r.dir, "termination", c.Name)
}

// script is the shell script that sets up the mount namespace and execs
// the container's argv ("$@").
func (s *JobStandIn) script(ms []mount, workingDir string, uid, gid int64, sc *corev1.SecurityContext) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "%s --bind %s %s\n", quote(s.tools.mount), quote(m.source), quote(m.target))
		if m.readOnly {
			fmt.Fprintf(&b, "%s -o remount,bind,ro %s\n", quote(s.tools.mount), quote(m.target))
		}
	}
	if workingDir == "" {
		workingDir = "/"
	}
	fmt.Fprintf(&b, "%s -p %s\ncd %s\n", quote(s.tools.mkdir), quote(workingDir), quote(workingDir))
	if uid == 0 && gid == 0 {
		b.WriteString(`exec "$@"` + "\n")
		return b.String()
	}
	nnp := ""
	if sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		nnp = " --no-new-privs"
	}
	fmt.Fprintf(&b, "exec %s --reuid=%d --regid=%d --clear-groups%s -- \"$@\"\n", quote(s.tools.setpriv), uid, gid, nnp)
	return b.String()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// terminationMessage is what the container wrote to its termination
// message file, or with FallbackToLogsOnError and a failure, its log's
// tail; at most 4096 bytes, as the kubelet keeps.
func (s *JobStandIn) terminationMessage(r *podRun, c corev1.Container, code int) string {
	b, _ := os.ReadFile(s.terminationFile(r, c))
	if len(b) == 0 && code != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		b, _ = os.ReadFile(filepath.Join(r.dir, "logs", c.Name+".log"))
		if len(b) > 2048 {
			b = b[len(b)-2048:]
		}
	}
	if len(b) > maxTerminationMessage {
		b = b[:maxTerminationMessage]
	}
	return string(b)
}

// env is the container's environment as the kubelet builds it: PATH,
// HOSTNAME and the in-cluster API variables, then envFrom, then env (later
// entries win), with $(VAR) references in env values expanded.
func (s *JobStandIn) env(ctx context.Context, pod *corev1.Pod, c corev1.Container) ([]string, error) {
	u, err := url.Parse(s.cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("API server address %q: %w", s.cfg.Host, err)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	env := []string{"PATH=" + defaultPath, "HOSTNAME=" + pod.Name,
		"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + port, "KUBERNETES_SERVICE_PORT_HTTPS=" + port}
	for _, from := range c.EnvFrom {
		data, err := s.envFrom(ctx, pod.Namespace, from)
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			env = append(env, from.Prefix+k+"="+v)
		}
	}
	for _, e := range c.Env {
		v, err := s.envValue(ctx, pod, e)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if v != nil {
			env = append(env, e.Name+"="+expand(*v, envMap(env)))
		}
	}
	return env, nil
}

func (s *JobStandIn) envFrom(ctx context.Context, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm := &corev1.ConfigMap{}
		if err := s.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: from.ConfigMapRef.Name}, cm); err != nil {
			return nil, optional(err, from.ConfigMapRef.Optional)
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		sec := &corev1.Secret{}
		if err := s.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: from.SecretRef.Name}, sec); err != nil {
			return nil, optional(err, from.SecretRef.Optional)
		}
		data := map[string]string{}
		for k, v := range sec.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	return nil, nil
}

// envValue is one env entry's value, nil when an optional reference is
// missing.
func (s *JobStandIn) envValue(ctx context.Context, pod *corev1.Pod, e corev1.EnvVar) (*string, error) {
	from := e.ValueFrom
	switch {
	case from == nil:
		return &e.Value, nil
	case from.FieldRef != nil:
		v, err := fieldValue(pod, from.FieldRef.FieldPath)
		return &v, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm := &corev1.ConfigMap{}
		if err := s.reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, cm); err != nil {
			return nil, optional(err, ref.Optional)
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return &v, nil
		}
		return nil, missingKey(ref.Key, "configmap", ref.Name, ref.Optional)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		sec := &corev1.Secret{}
		if err := s.reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, sec); err != nil {
			return nil, optional(err, ref.Optional)
		}
		if v, ok := sec.Data[ref.Key]; ok {
			return ptr.To(string(v)), nil
		}
		return nil, missingKey(ref.Key, "secret", ref.Name, ref.Optional)
	}
	return nil, errors.New("the Job stand-in supports value, fieldRef, configMapKeyRef and secretKeyRef")
}

func missingKey(key, kind, name string, opt *bool) error {
	if ptr.Deref(opt, false) {
		return nil
	}
	return fmt.Errorf("couldn't find key %s in %s %s", key, kind, name)
}

// fieldValue resolves a downward-API fieldRef against the Pod.
func fieldValue(pod *corev1.Pod, fieldPath string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if rest, ok := strings.CutPrefix(fieldPath, prefix+"['"); ok && strings.HasSuffix(rest, "']") {
			return m[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", fmt.Errorf("the Job stand-in does not support fieldRef %q", fieldPath)
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func lookupEnv(vars map[string]string, k string) *string {
	if v, ok := vars[k]; ok {
		return &v
	}
	return nil
}

func expandAll(in []string, vars map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, vars)
	}
	return out
}

// expand replaces $(VAR) with VAR's value when VAR is defined, and $$
// with $, as the kubelet does in env values, command and args.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
				} else {
					b.WriteString(s[i : i+3+end])
				}
				i += 2 + end
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
