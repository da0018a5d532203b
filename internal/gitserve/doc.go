// Package gitserve serves the router's own state repositories over Git's
// smart HTTP protocol (`router run --serve-git`), so a demo or an
// air-gapped install needs no separate Git server: Flux on the
// destinations fetches from the router, and the router pushes to itself
// over loopback.
//
// Anyone who can reach the address may fetch; only requests that CanPush
// allows (by default, from loopback) may push, and only as a
// compare-and-swap of the branch they name, so a push never overwrites a
// commit it did not see.
package gitserve
