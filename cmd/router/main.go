// Command router is the Switchyard request router.
//
//	router run [flags]                        run the manager against a cluster
//	router flux-manifests [flags] <destination>  print the Flux objects for a destination
//
// Run `router <command> -h` for the flags.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
)

const usage = "usage: router run [flags] | router flux-manifests [flags] <destination>"

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
	default:
		err = fmt.Errorf("unknown command %q; %s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}
