package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	kratixv1alpha1 "github.com/switchyard-dev/switchyard/api/kratix/v1alpha1"
	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/shutdown"
)

// deletionRecheck is how often a Kratix Promise being deleted looks for
// its Switchyard Promise again; the watch on the Switchyard Promise
// usually wakes it first.
const deletionRecheck = 5 * time.Second

// KratixPromiseReconciler imports each platform.kratix.io Promise into the
// switchyard.dev Promise of the same name, which it controls, and mirrors
// that Promise's Ready condition back.
type KratixPromiseReconciler struct {
	client.Client
	// APIReader confirms, without the cache, that a Switchyard Promise is
	// gone before a Kratix Promise being deleted lets go.
	APIReader client.Reader
	Recorder  events.EventRecorder
}

// +kubebuilder:rbac:groups=platform.kratix.io,resources=promises,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=platform.kratix.io,resources=promises/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=platform.kratix.io,resources=promises/finalizers,verbs=update
// +kubebuilder:rbac:groups=switchyard.dev,resources=promises,verbs=create;delete

// SetupWithManager registers the reconciler. It is named: its kind,
// Promise, is also the Switchyard Promise's, the default name.
func (r *KratixPromiseReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&kratixv1alpha1.Promise{}).
		Named("kratixpromise").
		Owns(&v1alpha1.Promise{}).
		Complete(shutdown.Quiet(r))
}

// Reconcile handles one Kratix Promise.
func (r *KratixPromiseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var k kratixv1alpha1.Promise
	if err := r.Get(ctx, req.NamespacedName, &k); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := k.DeepCopy()
	cond, result, err := r.reconcile(ctx, &k)
	if cond.Type != "" {
		cond.ObservedGeneration = k.Generation
		r.warnOnce(&k, cond)
		meta.SetStatusCondition(&k.Status.Conditions, cond)
	}
	if !equality.Semantic.DeepEqual(orig.Status, k.Status) {
		// A patch, never an update: an update would drop the spec's
		// fields the types do not know. NotFound: finalize let it go.
		if perr := r.Status().Patch(ctx, &k, client.MergeFrom(orig)); perr != nil && !apierrors.IsNotFound(perr) {
			err = errors.Join(err, perr)
		}
	}
	return result, err
}

// warnOnce records an event for a refusal to import, when the condition
// says something new, so that a Promise reconciled again does not repeat it.
func (r *KratixPromiseReconciler) warnOnce(k *kratixv1alpha1.Promise, cond metav1.Condition) {
	if cond.Reason != v1alpha1.UnsupportedField && cond.Reason != v1alpha1.NameConflict && cond.Reason != v1alpha1.ImportRejected {
		return
	}
	if prev := meta.FindStatusCondition(k.Status.Conditions, cond.Type); prev != nil && prev.Reason == cond.Reason && prev.Message == cond.Message {
		return
	}
	r.Recorder.Eventf(k, nil, "Warning", cond.Reason, "Import", "%s", cond.Message)
}

func (r *KratixPromiseReconciler) reconcile(ctx context.Context, k *kratixv1alpha1.Promise) (metav1.Condition, ctrl.Result, error) {
	if !k.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, k)
	}
	paths, err := UnsupportedFields(k.Spec.Raw)
	if err != nil {
		return metav1.Condition{}, ctrl.Result{}, err
	}
	if len(paths) > 0 {
		return notReady(v1alpha1.UnsupportedField, "Switchyard does not support "+strings.Join(paths, ", ")+"; remove them to import this Promise"), ctrl.Result{}, nil
	}
	spec, err := ImportedSpec(k)
	switch {
	case errors.Is(err, errNoAPI):
		return notReady(v1alpha1.InvalidAPI, err.Error()), ctrl.Result{}, nil
	case err != nil:
		return notReady(v1alpha1.InvalidWorkflow, err.Error()), ctrl.Result{}, nil
	}
	sw, cond, err := r.importPromise(ctx, k, spec)
	if err != nil || cond.Type != "" {
		return cond, ctrl.Result{}, err
	}
	k.Status.ObservedGeneration = k.Generation
	return mirror(k, sw), ctrl.Result{}, nil
}

// importPromise creates or updates the Switchyard Promise k controls. It
// returns a condition instead when it may not: the name is taken, or the
// API server refuses the Promise.
func (r *KratixPromiseReconciler) importPromise(ctx context.Context, k *kratixv1alpha1.Promise, spec v1alpha1.PromiseSpec) (*v1alpha1.Promise, metav1.Condition, error) {
	var sw v1alpha1.Promise
	err := r.Get(ctx, types.NamespacedName{Name: k.Name}, &sw)
	switch {
	case apierrors.IsNotFound(err):
		return r.create(ctx, k, spec)
	case err != nil:
		return nil, metav1.Condition{}, err
	case !metav1.IsControlledBy(&sw, k):
		return nil, notReady(v1alpha1.NameConflict, fmt.Sprintf("switchyard.dev Promise %s exists and was not imported from this Kratix Promise; it is left as it is", k.Name)), nil
	}
	if err := r.ensureFinalizer(ctx, k); err != nil {
		return nil, metav1.Condition{}, err
	}
	if sameSpec(sw.Spec, spec) && sw.Labels[v1alpha1.ImportedFromLabel] == kratixv1alpha1.GroupVersion.Group {
		return &sw, metav1.Condition{}, nil
	}
	sw.Spec = spec
	metav1.SetMetaDataLabel(&sw.ObjectMeta, v1alpha1.ImportedFromLabel, kratixv1alpha1.GroupVersion.Group)
	if err := r.Update(ctx, &sw); err != nil {
		return nil, rejected(err), ignoreInvalid(err)
	}
	r.Recorder.Eventf(k, &sw, "Normal", "Imported", "Import", "Updated switchyard.dev Promise %s", sw.Name)
	return &sw, metav1.Condition{}, nil
}

// create makes the Switchyard Promise, after the finalizer that deletes
// it is on k.
func (r *KratixPromiseReconciler) create(ctx context.Context, k *kratixv1alpha1.Promise, spec v1alpha1.PromiseSpec) (*v1alpha1.Promise, metav1.Condition, error) {
	if err := r.ensureFinalizer(ctx, k); err != nil {
		return nil, metav1.Condition{}, err
	}
	sw := &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: k.Name,
		Labels: map[string]string{v1alpha1.ImportedFromLabel: kratixv1alpha1.GroupVersion.Group}}, Spec: spec}
	if err := controllerutil.SetControllerReference(k, sw, r.Scheme()); err != nil {
		return nil, metav1.Condition{}, err
	}
	if err := r.Create(ctx, sw); err != nil {
		// AlreadyExists: the cache had not seen it; the next run decides.
		return nil, rejected(err), ignoreInvalid(err)
	}
	r.Recorder.Eventf(k, sw, "Normal", "Imported", "Import", "Created switchyard.dev Promise %s", sw.Name)
	return sw, metav1.Condition{}, nil
}

// rejected is ImportRejected when the API server found the Promise
// invalid, and no condition otherwise (the error is retried).
func rejected(err error) metav1.Condition {
	if !apierrors.IsInvalid(err) {
		return metav1.Condition{}
	}
	return notReady(v1alpha1.ImportRejected, "the API server refused the switchyard.dev Promise: "+err.Error())
}

func ignoreInvalid(err error) error {
	if apierrors.IsInvalid(err) {
		return nil
	}
	return err
}

func (r *KratixPromiseReconciler) ensureFinalizer(ctx context.Context, k *kratixv1alpha1.Promise) error {
	if controllerutil.ContainsFinalizer(k, v1alpha1.Finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(k.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(k, v1alpha1.Finalizer)
	return r.Patch(ctx, k, patch)
}

func (r *KratixPromiseReconciler) removeFinalizer(ctx context.Context, k *kratixv1alpha1.Promise) error {
	patch := client.MergeFromWithOptions(k.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(k, v1alpha1.Finalizer)
	return client.IgnoreNotFound(r.Patch(ctx, k, patch))
}

// mirror copies the Switchyard Promise's kind, apiVersion and Ready onto
// k's status. A Ready that describes an older generation of sw is not
// mirrored: the import just changed it.
func mirror(k *kratixv1alpha1.Promise, sw *v1alpha1.Promise) metav1.Condition {
	k.Status.Kind, k.Status.APIVersion = sw.Status.Kind, sw.Status.APIVersion
	c := meta.FindStatusCondition(sw.Status.Conditions, v1alpha1.ReadyCondition)
	if c == nil || c.ObservedGeneration != sw.Generation {
		return metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: v1alpha1.Importing,
			Message: fmt.Sprintf("waiting for switchyard.dev Promise %s to report Ready", sw.Name)}
	}
	return metav1.Condition{Type: v1alpha1.ReadyCondition, Status: c.Status, Reason: c.Reason, Message: c.Message}
}

// finalize deletes the Switchyard Promise k controls and lets k go once
// it is gone. Garbage collection would delete it too, through the
// ownerReference, but only after k is gone, and not where no
// kube-controller-manager runs.
func (r *KratixPromiseReconciler) finalize(ctx context.Context, k *kratixv1alpha1.Promise) (metav1.Condition, ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(k, v1alpha1.Finalizer) {
		return metav1.Condition{}, ctrl.Result{}, nil
	}
	var sw v1alpha1.Promise
	err := r.Get(ctx, types.NamespacedName{Name: k.Name}, &sw)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Promise created just now.
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: k.Name}, &sw)
	}
	switch {
	case apierrors.IsNotFound(err):
		return metav1.Condition{}, ctrl.Result{}, r.removeFinalizer(ctx, k)
	case err != nil:
		return metav1.Condition{}, ctrl.Result{}, err
	case !metav1.IsControlledBy(&sw, k):
		return metav1.Condition{}, ctrl.Result{}, r.removeFinalizer(ctx, k)
	}
	if sw.DeletionTimestamp.IsZero() {
		if err := r.Delete(ctx, &sw); client.IgnoreNotFound(err) != nil {
			return metav1.Condition{}, ctrl.Result{}, err
		}
	}
	msg := fmt.Sprintf("waiting for switchyard.dev Promise %s to be deleted", sw.Name)
	if c := meta.FindStatusCondition(sw.Status.Conditions, v1alpha1.ReadyCondition); c != nil && c.Status == metav1.ConditionFalse {
		msg += ": " + c.Message
	}
	return notReady(v1alpha1.Deleting, msg), ctrl.Result{RequeueAfter: deletionRecheck}, nil
}
