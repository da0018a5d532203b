package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/switchyard-dev/switchyard/internal/router"
)

type runOptions struct {
	kubeconfig      string
	metricsAddr     string
	metricsSecure   bool
	probeAddr       string
	pprofAddr       string
	leaderElect     bool
	leaderNamespace string
	qps             float64
	burst           int
	logLevel        string
	router          router.Options
}

func newRunCmd(g *globals) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the router (the manager and its controllers) against the platform cluster",
		Long: `Run the router: the controllers of state stores, destinations, Promises and their
requests, against the platform cluster named by --kubeconfig.`,
		Example: `  router run --kubeconfig ~/.kube/config --namespace default
  router run --leader-elect --leader-election-namespace switchyard-system --serve-git :8080`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.kubeconfig = g.kubeconfig
			return run(cmd.Context(), o)
		},
	}
	addRunFlags(cmd.Flags(), o)
	return cmd
}

func addRunFlags(fs *pflag.FlagSet, o *runOptions) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "serve metrics over HTTPS to clients the API server authenticates and authorises (get on /metrics); false serves plain HTTP to anyone")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "address of the Go pprof endpoints; empty disables them")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader so that only one replica writes")
	fs.StringVar(&o.leaderNamespace, "leader-election-namespace", "", "namespace of the leader election lease; empty means the pod's")
	fs.Float64Var(&o.qps, "kube-api-qps", 200, "Kubernetes client queries per second")
	fs.IntVar(&o.burst, "kube-api-burst", 400, "Kubernetes client burst")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info or error")
	fs.StringVar(&o.router.DataDir, "data-dir", filepath.Join(os.TempDir(), "switchyard"), "directory for the state stores' local clones")
	fs.IntVar(&o.router.RequestWorkers, "request-workers", 128, "concurrent reconciles per request kind (also the largest commit batch)")
	fs.IntVar(&o.router.MaxBatch, "max-batch", 1000, "most writes in one commit; 1 makes one commit per request (for comparison only)")
	fs.StringVar(&o.router.ServeGit, "serve-git", "", "address to serve the router's own state repositories over smart HTTP (read-only except from loopback) while this replica leads; with --leader-elect, /readyz passes only then; empty disables")
	fs.IntVar(&o.router.ProbeConcurrency, "probe-concurrency", 8, "most health probes (DescribeTable) running at once")
	fs.StringVar(&o.router.Namespace, "namespace", envOr("POD_NAMESPACE", router.DefaultNamespace), "the router's namespace: the only one whose Secrets stores and destinations may name (default $POD_NAMESPACE)")
	fs.BoolVar(&o.router.AllowCrossNamespaceRefs, "allow-cross-namespace-refs", false, "let stores and destinations name Secrets in any namespace (grant the router get on them too); off, as Flux's --no-cross-namespace-refs")
	fs.DurationVar(&o.router.SweepInterval, "sweep-interval", 10*time.Minute, "how often request directories no live request owns are removed from the state stores (also at start); negative disables the sweep")
	fs.DurationVar(&o.router.SweepGrace, "sweep-grace", 5*time.Minute, "how long a directory must be found orphaned, sweep after sweep, before the sweep removes it")
	fs.DurationVar(&o.router.StoreInterval, "store-interval", time.Minute, "how often a Ready state store is checked")
	fs.BoolVar(&o.router.InsecureKubeConfig.Exec, "insecure-kubeconfig-exec", false, "allow exec and auth-provider in Destination kubeconfig Secrets: they run programs the Secret's author chooses, inside the router")
	fs.StringVar(&o.router.PipelineImage, "pipeline-image", pipelineImage(), "the router's own image, run as the first and last container of each workflow Job (reading the object in, handing the output over)")
	fs.BoolVar(&o.router.InsecureKubeConfig.TLS, "insecure-kubeconfig-tls", false, "allow insecure-skip-tls-verify in Destination kubeconfig Secrets")
}

func run(ctx context.Context, o *runOptions) error {
	level := map[string]zapcore.Level{"debug": zapcore.DebugLevel, "info": zapcore.InfoLevel, "error": zapcore.ErrorLevel}
	lvl, ok := level[o.logLevel]
	if !ok {
		return fmt.Errorf("--log-level %q: want debug, info or error", o.logLevel)
	}
	ctrl.SetLogger(zap.New(zap.Level(lvl)))

	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	mgr, err := ctrl.NewManager(cfg, managerOptions(o))
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	stores, err := router.Setup(mgr, o.router)
	if err != nil {
		return err
	}
	defer stores.Close()
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", readyCheck(o, mgr.Elected())); err != nil {
		return err
	}
	ctrl.Log.Info("Starting the router", "dataDir", o.router.DataDir, "qps", o.qps, "burst", o.burst)
	return mgr.Start(ctx)
}

// managerOptions are the manager's options for o.
func managerOptions(o *runOptions) ctrl.Options {
	return router.ManagerOptions(ctrl.Options{
		Metrics:                 router.MetricsOptions(o.metricsAddr, o.metricsSecure),
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "switchyard-router",
		LeaderElectionNamespace: o.leaderNamespace,
		// Step down as soon as the manager stops, so the next replica (with
		// the Recreate strategy, the only one) need not wait out the lease.
		// Safe: run returns, and the process ends, when the manager stops,
		// and router.Setup closes the state store writers before the lease
		// is released.
		LeaderElectionReleaseOnCancel: o.leaderElect,
	}, o.router.Namespace)
}

// readyCheck is /readyz. With --serve-git and --leader-elect it passes only
// once this replica leads: only the leader serves the state repository, so
// its Service must send Flux nowhere else, and a rollout is done only when
// the new replica serves. Otherwise every replica is ready at once (a
// standby takes over without a restart).
func readyCheck(o *runOptions, elected <-chan struct{}) healthz.Checker {
	if !o.leaderElect || o.router.ServeGit == "" {
		return healthz.Ping
	}
	return func(*http.Request) error {
		select {
		case <-elected:
			return nil
		default:
			return errors.New("not the leader (yet): only the leader serves --serve-git")
		}
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// pipelineImage is the router's image at this build's version: workflow
// Jobs run the same router as the one that created them.
func pipelineImage() string {
	v, _ := buildVersion()
	if !strings.HasPrefix(v, "v") {
		v = "latest"
	}
	return "ghcr.io/switchyard-dev/switchyard:" + v
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}
