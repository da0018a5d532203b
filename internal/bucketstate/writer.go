package bucketstate

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // S3's ETag of a plain PUT is the MD5 of the content; used to compare, not to secure.
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Config says which bucket and prefix a Writer writes.
type Config struct {
	// Endpoint is the S3 API's URL (http:// or https://); see EndpointURL.
	Endpoint string
	Bucket   string
	Region   string
	// Root is the key prefix (a directory) every Change is relative to;
	// "" is the bucket root.
	Root string
	// Credentials signs requests; nil sends them unsigned.
	Credentials aws.CredentialsProvider
	// Concurrency bounds the requests in flight (default 16).
	Concurrency int
	// MaxBatch caps the Writes in one batch (default 1000).
	MaxBatch int
	// Retries is how many times a failed batch is retried (default 5),
	// with backoff from 100ms doubling, on top of the SDK's own retries of
	// each request.
	Retries int
	// Name labels the writer's metrics (the store's name).
	Name string
}

// ControlDir is the directory under the root that holds the version marker
// and write checks. A Kubernetes name cannot start with a dot, so no
// destination, namespace or request directory can collide with it.
const ControlDir = ".switchyard"

// requestTimeout bounds one S3 request including the SDK's retries.
const requestTimeout = 30 * time.Second

// Writer writes Changes as objects under one prefix of one bucket. It is
// safe for concurrent use; a single goroutine does the writing.
type Writer struct {
	cfg    Config
	client *s3.Client
	batch  *statestore.Batcher

	// work is held by whatever changes the index from the bucket's side:
	// a batch, or a Refresh listing the bucket.
	work sync.Mutex
	// mu guards the fields below for readers (Exists, Contains, the
	// no-op check).
	mu     sync.RWMutex
	loaded bool
	idx    *index
	// revision is the current digest; seq numbers revisions in the order
	// the writer saw them (history), carried across restarts by the marker.
	revision string
	seq      uint64
	history  map[string]uint64
	// dirty is set from the first object write of a batch until the
	// marker names the resulting revision; meanwhile no Write is answered
	// from the index, which may hold objects of an unrecorded revision.
	dirty bool
	// moved is set when a listing finds objects changed under the writer.
	moved bool
}

// Open creates the S3 client and starts the writer; nothing is read until
// the first Write or Refresh. Call Close to stop it.
func Open(cfg Config) (*Writer, error) {
	if cfg.Root != "" {
		if err := statestore.CheckPath(cfg.Root); err != nil {
			return nil, fmt.Errorf("bucket state store path: %w", err)
		}
	}
	if cfg.Bucket == "" || cfg.Endpoint == "" {
		return nil, errors.New("bucket state store needs an endpoint and a bucket name")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	w := &Writer{cfg: cfg, idx: newIndex(), history: map[string]uint64{}}
	w.client = s3.New(s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		Credentials:  cfg.Credentials,
		// S3-compatible servers (LocalStack, MinIO, s3rver) serve buckets
		// by path, not by virtual host.
		UsePathStyle: true,
		// The SDK's default trailing checksums use aws-chunked uploads,
		// which several S3-compatible servers refuse; Content-MD5 is set
		// instead.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.MaxBackoff = 2 * time.Second
		}),
	})
	w.batch = statestore.NewBatcher(cfg.Name, cfg.MaxBatch, cfg.Retries, statestore.Funcs{Write: w.write, Unchanged: w.unchanged, Check: checkControl})
	return w, nil
}

// EndpointURL turns a BucketStateStore endpoint (host[:port] or a URL) into
// a URL: without a scheme, insecure means http.
func EndpointURL(endpoint string, insecure bool) string {
	endpoint = strings.TrimSuffix(endpoint, "/")
	if strings.Contains(endpoint, "://") {
		return endpoint
	}
	if insecure {
		return "http://" + endpoint
	}
	return "https://" + endpoint
}

// Close stops the writer. Queued Writes fail.
func (w *Writer) Close() { w.batch.Close() }

// Write puts the objects changes add or alter and deletes those they
// remove (with other Writes queued at the same time), and returns the
// revision that carries them.
func (w *Writer) Write(ctx context.Context, note string, changes ...statestore.Change) (statestore.Result, error) {
	return w.batch.Write(ctx, note, changes)
}

// checkControl refuses a Change that names the control directory, which
// only the writer writes.
func checkControl(c statestore.Change) error {
	if first, _, _ := strings.Cut(c.Dir, "/"); first == ControlDir {
		return fmt.Errorf("directory %q: %s is the bucket store's own", c.Dir, ControlDir)
	}
	return nil
}

func (w *Writer) full(dir string) string {
	if w.cfg.Root == "" {
		return dir
	}
	return path.Join(w.cfg.Root, dir)
}

func (w *Writer) controlKey(name string) string { return w.full(path.Join(ControlDir, name)) }

// listPrefix is what the writer (and Flux's Bucket) lists.
func (w *Writer) listPrefix() string {
	if w.cfg.Root == "" {
		return ""
	}
	return w.cfg.Root + "/"
}

func sum(content []byte) string {
	s := md5.Sum(content) //nolint:gosec // see the import
	return hex.EncodeToString(s[:])
}

// plan is what a batch needs: what each key should hold, and which Writes
// touch which keys.
type plan struct {
	keys  map[string]want
	touch [][]string
}

// want is a key's desired state: content, or removed. (An empty file is
// content, so a nil slice cannot mean removal.)
type want struct {
	content []byte
	remove  bool
}

// plan applies the batch's Changes, in order, to the index's keys. Callers
// hold mu (read).
func (w *Writer) plan(batch []statestore.Write) plan {
	p := plan{keys: map[string]want{}, touch: make([][]string, len(batch))}
	for i, o := range batch {
		for _, c := range o.Changes {
			dir := w.full(c.Dir)
			if c.Replace {
				for _, k := range w.idx.keysUnder(dir) {
					p.keys[k] = want{remove: true}
					p.touch[i] = append(p.touch[i], k)
				}
				for k := range p.keys {
					if strings.HasPrefix(k, dir+"/") {
						p.keys[k] = want{remove: true}
					}
				}
			}
			for name, content := range c.Files {
				k := path.Join(dir, name)
				p.keys[k] = want{content: content}
				p.touch[i] = append(p.touch[i], k)
			}
		}
	}
	return p
}

// needed reports whether key must be written (or deleted) to be as wanted.
// Callers hold mu.
func (w *Writer) needed(key string, v want) bool {
	o, ok := w.idx.objects[key]
	if v.remove {
		return ok
	}
	return !ok || o.sum != sum(v.content)
}

// unchanged reports whether changes would leave every object as it is, and
// the current revision (see statestore.Unchanged).
func (w *Writer) unchanged(changes []statestore.Change) (string, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.loaded || w.dirty {
		return "", false
	}
	p := w.plan([]statestore.Write{{Changes: changes}})
	for k, v := range p.keys {
		if w.needed(k, v) {
			return "", false
		}
	}
	return w.revision, true
}

// write is the batch's work: put and delete what changed, then the marker.
func (w *Writer) write(ctx context.Context, batch []statestore.Write, attempt int) ([]statestore.Result, error) {
	w.work.Lock()
	defer w.work.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*requestTimeout)
	defer cancel()
	if attempt > 0 || !w.isLoaded() {
		if err := w.load(ctx); err != nil {
			return nil, err
		}
	}
	w.mu.RLock()
	p := w.plan(batch)
	var puts, dels []string
	for k, v := range p.keys {
		if w.needed(k, v) {
			if v.remove {
				dels = append(dels, k)
			} else {
				puts = append(puts, k)
			}
		}
	}
	changed := make([]bool, len(batch))
	pending := map[string]bool{}
	for _, k := range append(puts, dels...) {
		pending[k] = true
	}
	for i, keys := range p.touch {
		for _, k := range keys {
			changed[i] = changed[i] || pending[k]
		}
	}
	w.mu.RUnlock()
	if len(pending) > 0 {
		w.mu.Lock()
		w.dirty = true
		w.mu.Unlock()
	}

	if err := w.putAll(ctx, puts, p.keys); err != nil {
		return nil, err
	}
	if err := w.deleteAll(ctx, dels); err != nil {
		return nil, err
	}
	rev, err := w.advance(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]statestore.Result, len(batch))
	for i := range results {
		results[i] = statestore.Result{Commit: rev, Changed: changed[i]}
	}
	return results, nil
}

func (w *Writer) isLoaded() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.loaded
}

// putAll puts keys with at most Concurrency requests in flight, recording
// each success in the index at once, so a retry after a partial failure
// writes only what is left.
func (w *Writer) putAll(ctx context.Context, keys []string, wanted map[string]want) error {
	// A plain Group, not WithContext: one failed put must not cancel the
	// others, whose successes a retry then skips.
	var g errgroup.Group
	g.SetLimit(w.cfg.Concurrency)
	errs := make([]error, len(keys))
	for i, k := range keys {
		g.Go(func() error {
			errs[i] = w.put(ctx, k, wanted[k].content)
			return nil
		})
	}
	_ = g.Wait() // the puts' errors are in errs
	var all []error
	for _, err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	if len(all) == 0 {
		return nil
	}
	// A failure to reach the bucket is retried whole; only when every
	// failed put was refused is the batch refused (and split).
	first := all[0]
	for _, err := range all {
		if !errors.Is(err, statestore.ErrRefused) {
			first = err
			break
		}
	}
	return fmt.Errorf("%d of %d puts failed: %w", len(all), len(keys), first)
}

// refusedCodes are S3 errors about the object itself: sending it again
// gets the same answer.
var refusedCodes = map[string]bool{"KeyTooLongError": true, "EntityTooLarge": true, "InvalidObjectName": true}

func refused(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && refusedCodes[api.ErrorCode()]
}

func (w *Writer) put(ctx context.Context, key string, content []byte) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s := md5.Sum(content) //nolint:gosec // see the import
	out, err := w.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &w.cfg.Bucket, Key: aws.String(key), Body: bytes.NewReader(content),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(s[:])), ContentType: aws.String(contentType(key)),
	})
	if err != nil {
		if refused(err) {
			err = fmt.Errorf("%w: %w", statestore.ErrRefused, err)
		}
		return fmt.Errorf("putting %s in bucket %s: %w", key, w.cfg.Bucket, err)
	}
	metrics.ObjectWrites.WithLabelValues(w.cfg.Name, "put").Inc()
	tag := out.ETag
	if tag == nil {
		// The digest needs the ETag Flux will list; ask for it.
		head, err := w.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &w.cfg.Bucket, Key: aws.String(key)})
		if err != nil {
			return fmt.Errorf("reading the ETag of %s in bucket %s: %w", key, w.cfg.Bucket, err)
		}
		tag = head.ETag
	}
	w.mu.Lock()
	w.idx.put(key, object{etag: etag(tag), sum: hex.EncodeToString(s[:]), modified: time.Now()})
	w.mu.Unlock()
	return nil
}

func contentType(key string) string {
	if strings.HasSuffix(key, ".json") {
		return "application/json"
	}
	return "application/yaml"
}

// maxDelete is the most keys one DeleteObjects request takes.
const maxDelete = 1000

func (w *Writer) deleteAll(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), maxDelete)
		if err := w.deleteSome(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (w *Writer) deleteSome(ctx context.Context, keys []string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
	}
	out, err := w.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &w.cfg.Bucket,
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
	if err != nil {
		return fmt.Errorf("deleting %d objects from bucket %s: %w", len(keys), w.cfg.Bucket, err)
	}
	failed := map[string]bool{}
	for _, e := range out.Errors {
		failed[aws.ToString(e.Key)] = true
	}
	w.mu.Lock()
	for _, k := range keys {
		if !failed[k] {
			w.idx.remove(k)
		}
	}
	w.mu.Unlock()
	metrics.ObjectWrites.WithLabelValues(w.cfg.Name, "delete").Add(float64(len(keys) - len(failed)))
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		return fmt.Errorf("deleting %s from bucket %s: %s: %s (and %d more)", aws.ToString(e.Key), w.cfg.Bucket,
			aws.ToString(e.Code), aws.ToString(e.Message), len(out.Errors)-1)
	}
	return nil
}

func etag(s *string) string { return strings.Trim(aws.ToString(s), `"`) }
