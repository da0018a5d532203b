// Command bench measures the router against real components on loopback: an
// envtest kube-apiserver and etcd, a smart-HTTP Git server (or, with
// -store bucket, an S3-compatible server), and the router
// built from this repository and run as its own process, so its memory and
// CPU are read from the OS.
//
//	go run ./hack/bench -mode burst -requests 10000 -destinations 100
//	go run ./hack/bench -mode steady -rate 50 -duration 2m
//	go run ./hack/bench -mode baseline -requests 500
//	go run ./hack/bench -store bucket -requests 1000 -destinations 10
//	go run ./hack/bench -mode feedback -destinations 1000 -requests 2000
//
// Each run first measures the reference rate: the same client creating the
// same number of objects of a plain CRD and patching each one's status once,
// with no router. -mode feedback starts a second API server for the
// destinations, with Flux's CRDs but no Flux, and a namespace of Flux
// objects there per destination. It prints a table and writes JSON (-out).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

type options struct {
	mode         string
	requests     int
	destinations int
	rate         float64
	duration     time.Duration
	clients      int
	workers      int
	out          string
	restart      bool
	store        string
	heapProfile  string
	// restartProfile is where the router's CPU profile of its first 10 s
	// after the restart goes.
	restartProfile string
	// stallProfile is where the router's goroutines go when no request
	// became Written for 600 ms.
	stallProfile string
	memLimit     string
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "burst", "burst, steady, baseline (one commit per request, one worker) or feedback (a burst after every destination gets a kubeconfig; the router's memory and goroutines per watched destination)")
	flag.IntVar(&o.requests, "requests", 10000, "requests to create (burst and baseline)")
	flag.IntVar(&o.destinations, "destinations", 100, "destinations to spread them over")
	flag.Float64Var(&o.rate, "rate", 50, "requests per second (steady)")
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "how long to create at -rate (steady)")
	flag.IntVar(&o.clients, "clients", 32, "concurrent creating clients")
	flag.IntVar(&o.workers, "workers", 128, "router --request-workers")
	flag.StringVar(&o.out, "out", "", "write the result as JSON to this file")
	flag.BoolVar(&o.restart, "restart", true, "after a burst, restart the router and measure convergence")
	flag.StringVar(&o.store, "store", "git", "state store kind: git or bucket")
	flag.StringVar(&o.memLimit, "router-gomemlimit", "", "the router's GOMEMLIMIT (the Deployment sets it to the container's memory limit), for example 180MiB; empty: none")
	flag.StringVar(&o.heapProfile, "heapprofile", "", "write the router's heap profile (after a GC) to this file once every request is Written")
	flag.StringVar(&o.restartProfile, "restart-cpuprofile", "", "write the restarted router's CPU profile of its first 10 s to this file")
	flag.StringVar(&o.stallProfile, "stall-profile", "", "write the router's goroutines to this file the first time no request becomes Written for 600 ms while some wait")
	flag.Parse()
	if o.mode == "steady" {
		o.requests = int(o.rate * o.duration.Seconds())
	}
	if o.mode == "feedback" && o.store != "git" {
		// It stands in for Flux by naming a Git commit applied.
		fmt.Fprintln(os.Stderr, "bench: -mode feedback needs -store git")
		os.Exit(2)
	}
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
	if o.out != "" {
		if err := res.writeJSON(o.out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}
