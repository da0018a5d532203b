package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Credentials the S3 server accepts.
const (
	S3AccessKey = "switchyard-test"
	S3SecretKey = "s3-test-secret-not-real"
	S3Region    = "us-east-1"
)

// S3Server is an S3-compatible server (gofakes3, in memory) on loopback,
// behind a Proxy so that Stop and Start simulate an outage on the same
// address. It refuses requests signed with another access key, and logs
// every object write it serves.
type S3Server struct {
	// Endpoint is the URL clients use (http://127.0.0.1:port).
	Endpoint string
	Proxy    *Proxy

	server *httptest.Server
	mu     sync.Mutex
	writes []S3Write
	// failPuts, when set, fails every PUT of a key containing it.
	failPuts string
	client   *s3.Client
}

// S3Write is one object write the server served.
type S3Write struct {
	// Op is put or delete.
	Op, Key string
}

// StartS3 starts a server with the named buckets; it stops with the test.
func StartS3(t testing.TB, buckets ...string) *S3Server {
	t.Helper()
	s, err := NewS3Server(buckets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewS3Server starts a server with the named buckets. Call Close to stop
// it.
func NewS3Server(buckets ...string) (*S3Server, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return nil, err
		}
	}
	s := &S3Server{}
	fake := gofakes3.New(backend, gofakes3.WithIntegrityCheck(true))
	srv := httptest.NewServer(s.record(fake.Server()))
	p, err := NewProxy(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		srv.Close()
		return nil, err
	}
	s.Proxy, s.Endpoint, s.server = p, "http://"+p.Addr, srv
	s.client = s3.New(s3.Options{Region: S3Region, BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(S3AccessKey, S3SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
	return s, nil
}

// Close stops the proxy and the server.
func (s *S3Server) Close() {
	s.Proxy.Stop()
	s.server.Close()
}

// maxS3Key is S3's limit on a key's length, in bytes of UTF-8.
const maxS3Key = 1024

// record checks the access key and logs object writes.
func (s *S3Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Authorization"), "Credential="+S3AccessKey+"/") {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`)
			return
		}
		// Path style: /<bucket>/<key>.
		_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if r.Method == http.MethodPut && len(key) > maxS3Key {
			// S3's own rule, which gofakes3 does not apply.
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>KeyTooLongError</Code><Message>Your key is too long</Message></Error>`)
			return
		}
		s.mu.Lock()
		fail := s.failPuts != "" && r.Method == http.MethodPut && strings.Contains(key, s.failPuts)
		s.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`)
			return
		}
		switch {
		case r.Method == http.MethodPut && key != "":
			s.log(S3Write{Op: "put", Key: key})
		case r.Method == http.MethodDelete && key != "":
			s.log(S3Write{Op: "delete", Key: key})
		case r.Method == http.MethodPost && r.URL.Query().Has("delete"):
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var d struct {
				Objects []struct{ Key string } `xml:"Object"`
			}
			_ = xml.Unmarshal(body, &d)
			for _, o := range d.Objects {
				s.log(S3Write{Op: "delete", Key: o.Key})
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *S3Server) log(w S3Write) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, w)
}

// FailPuts makes every PUT of a key containing part fail with a 500, until
// it is called with "".
func (s *S3Server) FailPuts(part string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPuts = part
}

// Writes returns the object writes served so far, in order.
func (s *S3Server) Writes() []S3Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]S3Write(nil), s.writes...)
}

// Keys lists the bucket's keys, sorted, read directly (not through the
// proxy).
func (s *S3Server) Keys(t testing.TB, bucket string) []string {
	t.Helper()
	keys, err := s.List(bucket)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// List is Keys returning its error.
func (s *S3Server) List(bucket string) ([]string, error) {
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Get reads an object.
func (s *S3Server) Get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	b, err := s.read(bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Object reads an object, or says why it could not.
func (s *S3Server) Object(bucket, key string) string {
	b, err := s.read(bucket, key)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func (s *S3Server) read(bucket, key string) ([]byte, error) {
	out, err := s.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Put writes an object as another writer would.
func (s *S3Server) Put(t testing.TB, bucket, key string, content []byte) {
	t.Helper()
	if _, err := s.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
}

// Delete removes an object as another writer would.
func (s *S3Server) Delete(t testing.TB, bucket, key string) {
	t.Helper()
	if _, err := s.client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
}

// ETag returns an object's ETag without quotes, as Flux's Bucket source
// records it.
func (s *S3Server) ETag(t testing.TB, bucket, key string) string {
	t.Helper()
	out, err := s.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(aws.ToString(out.ETag), `"`)
}

// FluxDigest is the revision Flux's Bucket source would report for the
// objects under prefix: sha256 over the sorted lines "<key> <etag>\n",
// leaving out the router's control directory (the Bucket's ignore rule).
// It reads the server directly, so it does not depend on the router's code.
func (s *S3Server) FluxDigest(t testing.TB, bucket, prefix string) string {
	t.Helper()
	h := sha256.New()
	for _, k := range s.Keys(t, bucket) {
		if !strings.HasPrefix(k, prefix+"/") || strings.HasPrefix(k, prefix+"/.switchyard/") {
			continue
		}
		fmt.Fprintf(h, "%s %s\n", k, s.ETag(t, bucket, k))
	}
	return hex.EncodeToString(h.Sum(nil))
}
