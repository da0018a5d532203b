// Package gitstate is the only code that touches Git.
//
// A Writer owns one on-disk bare clone of a state store's branch. Callers
// hand it Changes (a directory and the files it should hold) and get back
// the commit that carries them. A single goroutine takes every Change queued
// while the previous push was in flight and makes one commit and one push
// of them all, so throughput grows with load instead of shrinking.
//
// # Commits without a worktree
//
// A commit is built from the changed paths only: the trees along each
// changed directory are read, rewritten and stored; nothing else in the
// repository is read. Its cost does not grow with the number of files.
//
// # Pushing safely
//
// Pushes are fast-forward only. When the remote branch moved (someone else
// pushed), the writer fetches, replays the same Changes onto the new head,
// and tries again with backoff. It never force-pushes, so other writers'
// commits survive. Changes that leave the tree as it was make no commit.
//
// A change the server refuses (a pre-receive hook, a size rule) is not
// retried as it is: the push fails with statestore.ErrRefused and the
// server's message, and the statestore.Batcher splits the batch until only
// the refused Writes fail.
//
// # Lookups and the network
//
// Fetches (fetch.go) and pushes (push.go) talk to the server holding only
// the writer's network lock, and take the repository lock just to store
// what they received or record what they sent. Exists, Contains and
// unchanged Writes take only the repository lock, so a slow server never
// stalls them; and since a push records its commit before any fetch can
// run, the writer's own push is never taken for drift. Contains uses
// generation numbers (ancestry.go), so its cost does not grow with the
// history.
//
// # The clone on disk
//
// Every push and every fetch that brings objects stores one pack. Past
// maxPacks (10) the smallest are merged into one (repack.go, a geometric
// roll-up as git repack --geometric=2 does), so the packs a lookup
// searches stay few and a merge costs what it merges, not the history.
// Decoded trees are cached for lookups, bounded by their estimated bytes
// (Config.TreeCacheBytes, default 64 MiB).
//
// # Layout
//
// Paths in the state repo are built by the functions in
// internal/statestore/layout.go, which refuse any element that could
// leave its directory.
package gitstate
