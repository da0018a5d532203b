// Package bucketstate is the state store on an S3-compatible bucket: the
// only code that talks S3. It implements statestore.Writer, so the
// scheduler and reconcilers do not know whether they write to Git or to a
// bucket.
//
// # Index and revision
//
// A Writer keeps an index of the objects under its prefix (key, ETag and
// the MD5 of what it wrote), listed once at start and at every Refresh.
// A Change is compared with the index in memory: objects whose content did
// not change are not written, so a no-op reconcile makes no request at all.
//
// The revision of the store is the digest Flux's Bucket source computes:
// sha256 over the sorted lines "<key> <etag>\n" of every object under the
// prefix. It plays the role of the commit: requests record it as their
// commit, and Flux reporting it (or a later one) means Flux applied them.
//
// # The version marker
//
// After each batch that changed something the writer puts
// <prefix>/.switchyard/version.json: the new revision, a sequence number,
// the time and the last revisions in order. Revisions are content digests
// and so carry no order of their own; the marker's history lets a
// restarted router still answer "is revision A later than B?". The
// .switchyard/ directory is excluded from the digest here and, through the
// Bucket's ignore rule, in Flux.
//
// # Safety
//
// Keys are built from Changes whose names statestore checks element by
// element, under the prefix; nothing outside the prefix is listed, written
// or deleted. Objects are only deleted when a Change says their directory
// no longer holds them, never because a listing failed. There is no
// compare-and-swap on S3: the router (its elected leader) must be the only
// writer of its directories; other writers' objects elsewhere are kept.
package bucketstate
