// Package e2e holds the end-to-end test: the router against a platform API
// server, committing to a real Git server that real Flux controllers apply
// to a destination API server, with tables checked at a DynamoDB endpoint.
// Only ACK is stood in for (see testenv.ACKStandIn).
package e2e
