package shutdown

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestQuiet(t *testing.T) {
	failing := func(err error) reconcile.Reconciler {
		return reconcile.Func(func(context.Context, ctrl.Request) (ctrl.Result, error) {
			return ctrl.Result{RequeueAfter: time.Second}, err
		})
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	boom := errors.New("patching status: boom")
	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		wantErr bool
	}{
		{name: "error while running is returned", ctx: context.Background(), err: boom, wantErr: true},
		{name: "context.Canceled while running is returned", ctx: context.Background(), err: context.Canceled, wantErr: true},
		{name: "any error after cancel is dropped", ctx: cancelled, err: fmt.Errorf("writing canaries: %w", boom)},
		{name: "deadline is still an error", ctx: expired, err: context.DeadlineExceeded, wantErr: true},
		{name: "success after cancel is kept", ctx: cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Quiet(failing(tt.err)).Reconcile(tt.ctx, ctrl.Request{})
			if (err != nil) != tt.wantErr || (tt.wantErr && !errors.Is(err, tt.err)) {
				t.Fatalf("got error %v, want %v (returned: %v)", err, tt.err, tt.wantErr)
			}
			if err == nil && tt.err != nil && res != (ctrl.Result{}) {
				t.Fatalf("a dropped error must not requeue: got %+v", res)
			}
		})
	}
}
