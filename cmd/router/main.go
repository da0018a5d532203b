// Command router is the Switchyard request router.
//
//	router run [flags]   run the manager against a cluster
//
// Run `router run -h` for the flags.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: router run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(ctrl.SetupSignalHandler(), os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q; usage: router run [flags]", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}
