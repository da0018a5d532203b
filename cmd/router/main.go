// Command router is the Switchyard request router.
//
//	router run [flags]                        run the manager against a cluster
//	router flux-manifests [flags] <destination>  print the Flux objects for a destination
//	router state ls [--destination D]            list the requests in the state store
//	router place --dry-run -f request.yaml       show where a request would go, and its manifests
//	router rbac <promise> | -f promise.yaml      print the RBAC that lets the router serve a Promise's kind
//
// Run `router <command> -h` for the flags.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
)

const usage = "usage: router run [flags] | router flux-manifests <destination> | router state ls | router place --dry-run -f request.yaml | router rbac <promise>"

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(ctrl.SetupSignalHandler(), os.Args[2:])
	case "flux-manifests":
		err = fluxManifests(ctrl.SetupSignalHandler(), os.Args[2:], os.Stdout)
	case "state":
		if len(os.Args) < 3 || os.Args[2] != "ls" {
			err = fmt.Errorf("usage: router state ls [--destination D]")
			break
		}
		err = stateLs(ctrl.SetupSignalHandler(), os.Args[3:], os.Stdout)
	case "rbac":
		err = rbac(ctrl.SetupSignalHandler(), os.Args[2:], os.Stdout)
	case "place":
		err = place(ctrl.SetupSignalHandler(), os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q; %s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}
