// Package probe checks that what a request asked for really exists, with
// the AWS SDK against the destination's endpoint. Probes run with bounded
// concurrency, and each request's probe backs off on its own, so a
// thousand waiting requests cannot hammer an endpoint.
package probe
