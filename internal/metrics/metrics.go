// Package metrics defines the router's Prometheus metrics, registered with
// controller-runtime's registry and served on --metrics-bind-address next
// to controller-runtime's own. Every name starts with switchyard_; the list
// with meanings is in docs/metrics.md.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// ScheduleSeconds is the time one scheduling decision takes.
	ScheduleSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "switchyard_schedule_duration_seconds",
		Help:    "Time to choose a destination for one request.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
	})
	// WrittenSeconds is the time from a request's creation to its first
	// Written=True.
	WrittenSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "switchyard_request_written_seconds",
		Help:    "Time from a request's creation to its manifests being pushed (first time only).",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
	})
	// QueueDepth is the number of writes waiting for a store's writer.
	QueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchyard_writer_queue_depth",
		Help: "Writes queued for a state store's writer.",
	}, []string{"store"})
	// BatchSize is the number of writes in one commit (or bucket batch).
	BatchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchyard_commit_batch_size",
		Help:    "Writes carried by one commit (or bucket batch) attempt.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	}, []string{"store"})
	// Commits counts commits pushed, or for a bucket the revisions
	// recorded (version marker writes).
	Commits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_commits_total",
		Help: "Commits pushed to a state store; for a bucket, version marker writes.",
	}, []string{"store"})
	// PushRetries counts batches retried after a rejection or error.
	PushRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_push_retries_total",
		Help: "Batches retried after the remote moved or a fetch, push, listing or object write failed.",
	}, []string{"store"})
	// RepackFailures counts repacks of a Git store's clone that failed
	// after a push or fetch, which they do not fail.
	RepackFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_repack_failures_total",
		Help: "Repacks of a Git state store's local clone that failed after a push or fetch; the push or fetch stands, the next one repacks again.",
	}, []string{"store"})
	// PushFailures counts batches given up after every retry.
	PushFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_push_failures_total",
		Help: "Batches that failed after every retry; their requests report WriteFailed and retry.",
	}, []string{"store"})
	// ObjectWrites counts objects a bucket state store put or deleted.
	ObjectWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_bucket_object_writes_total",
		Help: "Objects put or deleted in a bucket state store (op put or delete), the version marker included.",
	}, []string{"store", "op"})
	// Placements is the number of requests placed on each destination.
	Placements = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchyard_placements",
		Help: "Requests placed on a destination.",
	}, []string{"destination"})
	// Waiting is the number of requests waiting for a destination.
	Waiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchyard_requests_waiting",
		Help: "Requests with no matching destination (Scheduled=False, NoMatchingDestination).",
	})
	// OrphansSwept counts request directories the sweep removed because
	// no live request owns them.
	OrphansSwept = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_orphans_swept_total",
		Help: "Request directories removed from a destination's files because no live request owns them.",
	}, []string{"destination"})
	// Sweeps counts sweeps by result: complete, incomplete (some part
	// was kept because a read failed or a cache had not synced) or failed.
	Sweeps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_sweeps_total",
		Help: "Orphan sweeps by result: complete, incomplete (a part kept for want of a complete view) or failed (nothing removed).",
	}, []string{"result"})
)

func init() {
	crmetrics.Registry.MustRegister(ScheduleSeconds, WrittenSeconds, QueueDepth, BatchSize,
		Commits, PushRetries, PushFailures, RepackFailures, ObjectWrites, Placements, Waiting, OrphansSwept, Sweeps)
}
