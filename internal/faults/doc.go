// Package faults holds fault-injection tests that run the router as a real
// process and break it: SIGKILL in the middle of its work, with other
// writers on the same branch. Set SWITCHYARD_SOAK=1 for the long variant.
package faults
