package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// FinalizerMode is 1 for the way the router adds its finalizer to a
// Promise's requests (mode admission: a MutatingAdmissionPolicy at create;
// mode update: an update per request) and 0 for the other.
var FinalizerMode = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "switchyard_promise_finalizer_mode",
	Help: "1 for how the router adds its finalizer to a Promise's requests: mode admission (a MutatingAdmissionPolicy at create) or update (one update per request).",
}, []string{"promise", "mode"})

func init() { crmetrics.Registry.MustRegister(FinalizerMode) }
