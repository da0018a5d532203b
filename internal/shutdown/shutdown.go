package shutdown

import (
	"context"
	"errors"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Quiet returns r, except that an error r returns once ctx was cancelled
// (the manager is stopping) is logged at debug level and not returned.
// A deadline (context.DeadlineExceeded) is still an error.
func Quiet(r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
		res, err := r.Reconcile(ctx, req)
		if err != nil && errors.Is(ctx.Err(), context.Canceled) {
			log.FromContext(ctx).V(1).Info("Stopped by shutdown", "error", err.Error())
			return ctrl.Result{}, nil
		}
		return res, err
	})
}
