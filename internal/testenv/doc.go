// Package testenv starts the real components tests run against: an envtest
// control plane (kube-apiserver and etcd built from Go modules by
// hack/controlplane.sh) and a Git server speaking smart HTTP, behind a proxy
// that can be stopped and started on the same address to simulate outages.
// It also reads repositories back with the git command-line client, so
// assertions do not depend on the code under test.
//
// Where a component cannot run here, a stand-in plays it as the tests need:
// ACKStandIn the ACK DynamoDB controller, JobStandIn the Job controller and
// the kubelet (a Job's Pod runs as local processes).
//
// Tests and the benchmark harness (hack/bench) import it.
package testenv
