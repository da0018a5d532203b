package testenv

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Image is a container image as the Job stand-in runs it.
type Image struct {
	// Entrypoint is the image's ENTRYPOINT, used when a container has no
	// command.
	Entrypoint []string
	// Files maps a path in the image (/router) to the host program that
	// plays it. A container can only run programs listed here.
	Files map[string]string
	// User and Group are the image's USER (0: root), used when the Pod's
	// securityContext does not say; as with the kubelet, runAsNonRoot
	// refuses an image whose user is root.
	User, Group int64
}

// maxRunningPods is how many Pods the stand-in runs at once, as a small
// node would.
const maxRunningPods = 4

// JobStandIn plays the Job controller and the kubelet on an envtest
// control plane, which has neither, so that Jobs run:
//
//   - A Job that is not suspended, not finished and has no Pod gets one
//     Pod from its template (generateName <job>-, the job-name and
//     controller-uid labels, a controller reference to the Job), and
//     status active=1 with its startTime.
//   - The Pod runs on this machine: its initContainers in order, then its
//     containers one after another, each a local process in a private
//     mount namespace (see runContainer), with the Pod's volumes, env and
//     service account token. Container and Pod statuses are written as
//     the kubelet writes them.
//   - The Job then finishes as the Kubernetes 1.37 Job controller
//     finishes it: SuccessCriteriaMet then Complete, or FailureTarget then
//     Failed (BackoffLimitExceeded).
//
// Where it differs from the real thing, for tests' sake: one Pod per Job
// and no retries (backoffLimit is taken as 0, parallelism and completions
// as 1); an image missing from the table, a missing env reference or an
// unsupported volume fails the container at once (the kubelet would keep
// the Pod Pending); the Pods carry no job-tracking finalizer, no node,
// IPs or conditions, and nothing deletes them (envtest has no garbage
// collector); Job status.ready stays 0; a deleted Job's processes are
// killed. Containers see the host's filesystem under their mounts, and
// missing mount points are made on the host as empty directories and
// files (see runContainer). It must run as root, on Linux, with
// util-linux's unshare, mount and setpriv.
type JobStandIn struct {
	client    client.Client // cached Jobs
	reader    client.Reader // uncached, for Pods and fresh Jobs
	clientset kubernetes.Interface
	cfg       *rest.Config
	images    map[string]Image
	dir       string
	tools     hostTools
	log       *log.Logger
	slots     chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
	wg     sync.WaitGroup

	mu      sync.Mutex
	started map[types.UID]bool
	running map[types.NamespacedName]podProcess // by Job
}

// podProcess is a Pod being run, of Job job; cancel kills its processes.
type podProcess struct {
	job    types.UID
	cancel context.CancelFunc
}

// StartJobStandIn runs the stand-in against the API server at cfg, with
// the images in images (keyed by image reference, with or without tag or
// digest). Per-Pod directories (volumes, logs) and the stand-in's own log,
// jobstandin.log, go under dir.
func StartJobStandIn(cfg *rest.Config, images map[string]Image, dir string) (*JobStandIn, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the Job stand-in must run as root: it makes a mount namespace per container")
	}
	tools, err := findHostTools()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "jobstandin.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	// Several stand-ins (one per cluster) may share a test process.
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		return nil, err
	}
	s := &JobStandIn{client: mgr.GetClient(), reader: mgr.GetAPIReader(), clientset: clientset, cfg: cfg,
		images: maps.Clone(images), dir: dir, tools: tools, log: log.New(logFile, "", log.LstdFlags|log.Lmicroseconds),
		slots: make(chan struct{}, maxRunningPods), started: map[types.UID]bool{},
		running: map[types.NamespacedName]podProcess{}}
	if err := ctrl.NewControllerManagedBy(mgr).Named("job-standin").For(&batchv1.Job{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).Complete(s); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.done = make(chan error, 1)
	go func() {
		err := mgr.Start(s.ctx)
		s.wg.Wait() // the Pods' goroutines end once s.ctx is done
		logFile.Close()
		s.done <- err
	}()
	return s, nil
}

// Stop kills the running containers and stops the stand-in.
func (s *JobStandIn) Stop() error {
	s.cancel()
	return <-s.done
}

// Logs returns what a container of a Pod run here wrote to stdout and
// stderr, or "" when it has not run.
func (s *JobStandIn) Logs(namespace, pod, container string) string {
	b, _ := os.ReadFile(filepath.Join(s.podDir(namespace, pod), "logs", container+".log"))
	return string(b)
}

func (s *JobStandIn) podDir(namespace, pod string) string {
	return filepath.Join(s.dir, namespace+"_"+pod)
}

// Reconcile starts a Pod for a Job that needs one, or kills the Pod's
// processes when its Job goes.
func (s *JobStandIn) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	job := &batchv1.Job{}
	if err := s.client.Get(ctx, req.NamespacedName, job); err != nil {
		if apierrors.IsNotFound(err) {
			s.kill(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !job.DeletionTimestamp.IsZero() {
		s.kill(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if jobFinished(job) || ptr.Deref(job.Spec.Suspend, false) || !s.claim(job.UID) {
		return ctrl.Result{}, nil
	}
	pod, retry, err := s.startPod(ctx, job)
	if pod == nil {
		s.unclaim(job.UID)
		return ctrl.Result{RequeueAfter: retry}, err
	}
	if err != nil {
		s.log.Printf("Pod %s/%s runs, but: %v", pod.Namespace, pod.Name, err)
	}
	runCtx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.running[req.NamespacedName] = podProcess{job: job.UID, cancel: cancel}
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run(runCtx, req.NamespacedName, job, pod)
	return ctrl.Result{}, nil
}

// claim records that this stand-in runs job uid's Pod, false when it
// already does: the cache may not show the Pod it created yet.
func (s *JobStandIn) claim(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started[uid] {
		return false
	}
	s.started[uid] = true
	return true
}

func (s *JobStandIn) unclaim(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.started, uid)
}

func (s *JobStandIn) kill(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.running[key]; ok {
		s.log.Printf("Job %s is gone: killing its Pod's processes", key)
		p.cancel()
	}
}

// startPod creates job's Pod and marks the Job active. It returns no Pod
// when the Job already has one (an earlier stand-in made it) or when the
// Pod cannot be made yet, with how long to wait before trying again.
func (s *JobStandIn) startPod(ctx context.Context, job *batchv1.Job) (*corev1.Pod, time.Duration, error) {
	pods := &corev1.PodList{}
	if err := s.reader.List(ctx, pods, client.InNamespace(job.Namespace),
		client.MatchingLabels{batchv1.ControllerUidLabel: string(job.UID)}); err != nil {
		return nil, 0, err
	}
	if len(pods.Items) > 0 {
		return nil, 0, nil
	}
	pod := podFor(job)
	// The ServiceAccount admission plugin, off in envtest, refuses a Pod
	// whose service account does not exist; the Job controller retries.
	sa := pod.Spec.ServiceAccountName
	if _, err := s.clientset.CoreV1().ServiceAccounts(job.Namespace).Get(ctx, sa, metav1.GetOptions{}); err != nil {
		s.log.Printf("Not creating the Pod of Job %s/%s: service account %q: %v", job.Namespace, job.Name, sa, err)
		return nil, time.Second, nil
	}
	if err := s.client.Create(ctx, pod); err != nil {
		return nil, 0, fmt.Errorf("creating the Pod of Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	s.log.Printf("Created Pod %s/%s for Job %s", pod.Namespace, pod.Name, job.Name)
	err := s.patchJobStatus(ctx, job, func(st *batchv1.JobStatus) {
		now := metav1.Now()
		st.Active, st.Ready, st.Terminating = 1, ptr.To[int32](0), ptr.To[int32](0)
		st.StartTime = &now
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	})
	return pod, 0, err
}

// podFor is the Pod the Job controller makes from job's template.
func podFor(job *batchv1.Job) *corev1.Pod {
	tmpl := job.Spec.Template.DeepCopy()
	labels := map[string]string{}
	for k, v := range tmpl.Labels {
		labels[k] = v
	}
	labels[batchv1.JobNameLabel], labels[batchv1.ControllerUidLabel] = job.Name, string(job.UID)
	labels["job-name"], labels["controller-uid"] = job.Name, string(job.UID) // the legacy labels, still set
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: job.Name + "-", Namespace: job.Namespace, Labels: labels, Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))},
		},
		Spec: tmpl.Spec,
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default" // as the ServiceAccount admission plugin sets it
	}
	return pod
}

// run runs pod once a slot is free, then finishes job from its outcome.
func (s *JobStandIn) run(ctx context.Context, key types.NamespacedName, job *batchv1.Job, pod *corev1.Pod) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		// A Job of the same name may have replaced this one.
		if s.running[key].job == job.UID {
			delete(s.running, key)
		}
		s.mu.Unlock()
	}()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return
	}
	succeeded, err := s.runPod(ctx, pod)
	if ctx.Err() != nil {
		return // the Job went, or the stand-in stops
	}
	if err != nil {
		s.log.Printf("Pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	if err := s.finishJob(ctx, job, succeeded); err != nil {
		s.log.Printf("Finishing Job %s: %v", key, err)
	}
}

func jobFinished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// finishJob writes the Job's terminal status in the two steps the Job
// controller takes, so a watcher may see the first alone as it would on a
// cluster: SuccessCriteriaMet (or FailureTarget) with the counts, then
// Complete with the completionTime (or Failed, which must have none).
// The API server refuses Complete without SuccessCriteriaMet, Failed
// without FailureTarget, either without startTime or with active > 0, and
// completionTime on anything but Complete.
func (s *JobStandIn) finishJob(ctx context.Context, job *batchv1.Job, succeeded bool) error {
	target, final, reason, msg := batchv1.JobSuccessCriteriaMet, batchv1.JobComplete,
		batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"
	if !succeeded {
		target, final, reason, msg = batchv1.JobFailureTarget, batchv1.JobFailed,
			batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"
	}
	err := s.patchJobStatus(ctx, job, func(st *batchv1.JobStatus) {
		st.Active, st.Ready, st.Terminating = 0, ptr.To[int32](0), ptr.To[int32](0)
		if succeeded {
			st.Succeeded = 1
		} else {
			st.Failed = 1
		}
		st.Conditions = append(st.Conditions, jobCondition(target, reason, msg))
	})
	if err != nil {
		return err
	}
	return s.patchJobStatus(ctx, job, func(st *batchv1.JobStatus) {
		st.Conditions = append(st.Conditions, jobCondition(final, reason, msg))
		if succeeded {
			now := metav1.Now()
			st.CompletionTime = &now
		}
	})
}

func jobCondition(t batchv1.JobConditionType, reason, msg string) batchv1.JobCondition {
	now := metav1.Now()
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg,
		LastProbeTime: now, LastTransitionTime: now}
}

// patchJobStatus applies change to the Job's current status, read from
// the API server since the cache may lag the previous write.
func (s *JobStandIn) patchJobStatus(ctx context.Context, job *batchv1.Job, change func(*batchv1.JobStatus)) error {
	cur := &batchv1.Job{}
	if err := s.reader.Get(ctx, client.ObjectKeyFromObject(job), cur); err != nil {
		return err
	}
	if cur.UID != job.UID {
		return fmt.Errorf("job %s/%s was replaced", job.Namespace, job.Name)
	}
	old := cur.DeepCopy()
	change(&cur.Status)
	if err := s.client.Status().Patch(ctx, cur, client.MergeFrom(old)); err != nil {
		return fmt.Errorf("writing the status of Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return nil
}
