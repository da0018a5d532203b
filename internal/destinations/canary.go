package destinations

import (
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// CanaryNamespace is created on every destination by the dependencies
// canary; the resources canary lives in it. It is not the router's own
// namespace, so pruning it never touches the router, even when the
// platform cluster is also a destination.
const CanaryNamespace = "switchyard-destination"

// canaries are the changes that put a canary file into a destination's
// dependencies/ and resources/ directories, leaving the rest alone.
func canaries(destination, dir string) []statestore.Change {
	ns := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  annotations:
    switchyard.dev/destination: %q
`, CanaryNamespace, destination)
	cm := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: switchyard-canary
  namespace: %s
data:
  destination: %q
  path: %q
`, CanaryNamespace, destination, dir)
	return []statestore.Change{
		{Dir: dir + "/" + statestore.DependenciesDir, Files: map[string][]byte{statestore.CanaryFile: []byte(ns)}},
		{Dir: dir + "/" + statestore.ResourcesDir, Files: map[string][]byte{statestore.CanaryFile: []byte(cm)}},
	}
}
