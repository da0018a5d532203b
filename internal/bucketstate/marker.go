package bucketstate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// MarkerFile is the version marker's name in ControlDir.
const MarkerFile = "version.json"

// Marker is the content of the version marker.
type Marker struct {
	// Revision is the store's digest after the batch (Flux's Bucket
	// revision without its "sha256:" prefix).
	Revision string `json:"revision"`
	// Sequence numbers the revisions in the order the router made them.
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	// History holds the last revisions, oldest first, ending with Revision.
	History []Version `json:"history"`
}

// Version is one revision and its sequence number.
type Version struct {
	Revision string `json:"revision"`
	Sequence uint64 `json:"sequence"`
}

// markerHistory is how many revisions the marker carries; maxHistory how
// many the writer remembers.
const (
	markerHistory = 100
	maxHistory    = 1000
)

// ignoreFile is the object Flux reads ignore rules from at the bucket root
// and leaves out of its index; the router leaves it out too. (Rules in it
// are not applied by the router: do not keep one in a state bucket.)
const ignoreFile = ".sourceignore"

// load lists the prefix into a new index and reads the marker. Callers hold
// work. A failed listing or read changes nothing.
func (w *Writer) load(ctx context.Context) error {
	idx := newIndex()
	control := w.controlKey("") + "/"
	pages := s3.NewListObjectsV2Paginator(w.client, &s3.ListObjectsV2Input{Bucket: &w.cfg.Bucket, Prefix: aws.String(w.listPrefix())})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing bucket %s at %q: %w", w.cfg.Bucket, w.listPrefix(), err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if strings.HasPrefix(k, control) || strings.HasSuffix(k, "/") || k == ignoreFile {
				continue
			}
			idx.put(k, object{etag: etag(o.ETag), modified: aws.ToTime(o.LastModified)})
		}
	}
	marker, err := w.readMarker(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, o := range idx.objects {
		// Keep what the writer knows of the content when the object is
		// the one it wrote; else trust an ETag that is an MD5.
		if old, ok := w.idx.objects[k]; ok && old.etag == o.etag {
			o.sum = old.sum
		} else if len(o.etag) == 32 {
			o.sum = o.etag
		}
		idx.objects[k] = o
	}
	if w.loaded && !w.idx.same(idx) {
		w.moved = true
	}
	w.idx, w.loaded = idx, true
	if marker != nil {
		for _, v := range marker.History {
			w.remember(v.Revision, v.Sequence)
		}
	}
	rev := idx.digest()
	// The marker does not name what the bucket holds: someone else wrote,
	// or a router stopped between its objects and the marker. The content
	// is a new revision, recorded with the next batch.
	w.dirty = marker == nil || marker.Revision != rev
	if w.dirty && rev != w.revision {
		w.seq++
		w.remember(rev, w.seq)
	}
	w.revision = rev
	return nil
}

// remember records revision r at sequence n. Callers hold mu.
func (w *Writer) remember(r string, n uint64) {
	if len(w.history) >= maxHistory {
		for k, v := range w.history {
			if v+maxHistory/2 < w.seq {
				delete(w.history, k)
			}
		}
	}
	if n > w.history[r] {
		w.history[r] = n
	}
	w.seq = max(w.seq, n)
}

func (w *Writer) readMarker(ctx context.Context) (*Marker, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out, err := w.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &w.cfg.Bucket, Key: aws.String(w.controlKey(MarkerFile))})
	var missing *types.NoSuchKey
	var resp *smithyhttp.ResponseError
	if errors.As(err, &missing) || (errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the version marker %s: %w", w.controlKey(MarkerFile), err)
	}
	defer out.Body.Close()
	var m Marker
	if err := json.NewDecoder(io.LimitReader(out.Body, 1<<20)).Decode(&m); err != nil {
		// A damaged marker only costs the order of old revisions.
		return nil, nil
	}
	return &m, nil
}

// advance records the index's digest as the new revision when a batch
// wrote objects, and writes the marker when it does not name the revision.
// Callers hold work.
func (w *Writer) advance(ctx context.Context) (string, error) {
	w.mu.Lock()
	if !w.dirty {
		rev := w.revision
		w.mu.Unlock()
		return rev, nil
	}
	if rev := w.idx.digest(); rev != w.revision {
		w.seq++
		w.remember(rev, w.seq)
		w.revision = rev
	}
	rev := w.revision
	m := Marker{Revision: rev, Sequence: w.history[rev], Time: time.Now().UTC(), History: w.recent()}
	w.mu.Unlock()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &w.cfg.Bucket, Key: aws.String(w.controlKey(MarkerFile)),
		Body: bytes.NewReader(b), ContentType: aws.String("application/json")}); err != nil {
		return "", fmt.Errorf("writing the version marker: %w", err)
	}
	metrics.ObjectWrites.WithLabelValues(w.cfg.Name, "put").Inc()
	metrics.Commits.WithLabelValues(w.cfg.Name).Inc()
	w.mu.Lock()
	w.dirty = w.revision != rev
	w.mu.Unlock()
	return rev, nil
}

// recent returns the last markerHistory revisions, oldest first. Callers
// hold mu.
func (w *Writer) recent() []Version {
	out := make([]Version, 0, len(w.history))
	for r, n := range w.history {
		out = append(out, Version{Revision: r, Sequence: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sequence < out[j].Sequence })
	return out[max(0, len(out)-markerHistory):]
}

// Refresh lists the bucket again and returns the revision, and whether the
// objects changed under the writer since the last Refresh (someone else
// wrote or deleted). It is the store's cheap read check.
func (w *Writer) Refresh(ctx context.Context) (string, bool, error) {
	w.work.Lock()
	defer w.work.Unlock()
	if err := w.load(ctx); err != nil {
		return "", false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	moved := w.moved
	w.moved = false
	if len(w.idx.objects) == 0 {
		return "", moved, nil
	}
	return w.revision, moved, nil
}

// CheckWrite puts a small object in the control directory and deletes it:
// the store's write check, which leaves nothing behind when it succeeds.
func (w *Writer) CheckWrite(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var b [8]byte
	_, _ = rand.Read(b[:])
	key := w.controlKey("write-check-" + hex.EncodeToString(b[:]))
	if _, err := w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &w.cfg.Bucket, Key: &key,
		Body: strings.NewReader("switchyard write check\n")}); err != nil {
		return fmt.Errorf("write check: putting %s: %w", key, err)
	}
	if _, err := w.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &w.cfg.Bucket, Key: &key}); err != nil {
		return fmt.Errorf("write check: deleting %s (left behind): %w", key, err)
	}
	return nil
}

// Exists reports whether dir holds anything in the index.
func (w *Writer) Exists(dir string) (bool, error) {
	if err := statestore.CheckPath(dir); err != nil {
		return false, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.idx.under[w.full(dir)] > 0, nil
}

// Contains reports whether revision head includes revision r: r itself, or
// a later revision in the writer's history. A head the writer does not
// know (someone else's objects, not listed yet) is ErrUnknownCommit. An r
// it does not know, under a head it knows, is older than the history
// reaches (the marker carries the last 100 revisions across restarts), so
// the head includes it.
func (w *Writer) Contains(head, r string) (bool, error) {
	if head == r {
		return true, nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	hn, hok := w.history[head]
	rn, rok := w.history[r]
	switch {
	case !hok:
		return false, fmt.Errorf("%w: %s", statestore.ErrUnknownCommit, head)
	case !rok:
		return true, nil
	}
	return hn >= rn, nil
}

// List lists the directories exactly depth levels below dir.
func (w *Writer) List(dir string, depth int) ([]string, error) {
	dirs, err := w.Dirs(dir, depth)
	if err != nil {
		return nil, err
	}
	return statestore.Paths(dirs), nil
}

// Dirs lists the directories exactly depth levels below dir, with the time
// the newest object in each was written. Revisions are not per directory,
// so Commit is "".
func (w *Writer) Dirs(dir string, depth int) ([]statestore.Dir, error) {
	if err := statestore.CheckPath(dir); err != nil {
		return nil, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	base := w.full(dir)
	when := map[string]time.Time{}
	for _, k := range w.idx.keysUnder(base) {
		parts := strings.Split(strings.TrimPrefix(k, base+"/"), "/")
		if len(parts) <= depth {
			continue
		}
		p := dir + "/" + strings.Join(parts[:depth], "/")
		if t, seen := w.idx.objects[k].modified, when[p]; seen.IsZero() || t.After(seen) {
			when[p] = t
		}
	}
	out := make([]statestore.Dir, 0, len(when))
	for p, t := range when {
		out = append(out, statestore.Dir{Path: p, When: t})
	}
	sortDirs(out)
	return out, nil
}
