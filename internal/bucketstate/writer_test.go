package bucketstate_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/switchyard-dev/switchyard/internal/bucketstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

const bucket = "state"

func open(t testing.TB, s *testenv.S3Server, root string) *bucketstate.Writer {
	t.Helper()
	w, err := bucketstate.Open(bucketstate.Config{Endpoint: s.Endpoint, Bucket: bucket, Region: testenv.S3Region, Root: root,
		Credentials: credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, testenv.S3SecretKey, ""), Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func write(t testing.TB, w *bucketstate.Writer, changes ...statestore.Change) statestore.Result {
	t.Helper()
	r, err := w.Write(ctx(t), "test", changes...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func request(dest, name, content string) statestore.Change {
	return statestore.Change{Dir: dest + "/resources/team-a/dynamodb/" + name, Replace: true,
		Files: map[string][]byte{"table.yaml": []byte(content)}}
}

func TestWritePutsObjectsAndTheMarker(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	r := write(t, w, request("dev-1", "orders", "a: 1\n"), request("dev-1", "events", "a: 2\n"))
	if !r.Changed || len(r.Commit) != 64 {
		t.Fatalf("result %+v", r)
	}
	want := []string{
		"clusters/.switchyard/version.json",
		"clusters/dev-1/resources/team-a/dynamodb/events/table.yaml",
		"clusters/dev-1/resources/team-a/dynamodb/orders/table.yaml",
	}
	if got := s.Keys(t, bucket); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if d := s.FluxDigest(t, bucket, "clusters"); d != r.Commit {
		t.Fatalf("revision %s, Flux would compute %s", r.Commit, d)
	}
	var m bucketstate.Marker
	if err := json.Unmarshal(s.Get(t, bucket, want[0]), &m); err != nil || m.Revision != r.Commit || m.Sequence == 0 || m.History[len(m.History)-1].Revision != r.Commit {
		t.Fatalf("marker %+v (%v), want revision %s", m, err, r.Commit)
	}
	// Writes: two objects and the marker.
	if n := len(s.Writes()); n != 3 {
		t.Fatalf("%d writes: %v", n, s.Writes())
	}
}

func TestNoOpWritesMakeNoRequests(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	first := write(t, w, request("dev-1", "orders", "a: 1\n"))
	before := len(s.Writes())
	for i := 0; i < 10; i++ {
		r := write(t, w, request("dev-1", "orders", "a: 1\n"))
		if r.Changed || r.Commit != first.Commit {
			t.Fatalf("no-op write %d: %+v", i, r)
		}
	}
	// A restarted writer lists once and then writes nothing either.
	w2 := open(t, s, "clusters")
	if _, _, err := w2.Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if r := write(t, w2, request("dev-1", "orders", "a: 1\n")); r.Changed || r.Commit != first.Commit {
		t.Fatalf("after restart: %+v", r)
	}
	if after := s.Writes(); len(after) != before {
		t.Fatalf("no-op writes wrote: %v", after[before:])
	}
}

// An empty file is a file: written, kept, and a no-op the second time.
func TestEmptyFileIsWritten(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	c := statestore.Change{Dir: "dev-1/resources/ns/p/empty", Replace: true, Files: map[string][]byte{"empty.yaml": nil}}
	if r := write(t, w, c); !r.Changed {
		t.Fatalf("first write: %+v", r)
	}
	if got := string(s.Get(t, bucket, "clusters/dev-1/resources/ns/p/empty/empty.yaml")); got != "" {
		t.Fatalf("content %q", got)
	}
	if r := write(t, w, c); r.Changed {
		t.Fatalf("second write changed: %+v", r)
	}
}

func TestReplaceAndRemove(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	write(t, w, statestore.Change{Dir: "dev-1/resources/team-a/dynamodb/orders", Replace: true,
		Files: map[string][]byte{"table.yaml": []byte("t"), "extra.yaml": []byte("e")}})
	write(t, w, request("dev-1", "orders", "t2"))
	write(t, w, request("dev-2", "kept", "k"))
	keys := strings.Join(s.Keys(t, bucket), " ")
	if strings.Contains(keys, "extra.yaml") || !strings.Contains(keys, "orders/table.yaml") {
		t.Fatalf("replace kept the old file or lost the new: %s", keys)
	}
	// Removing a destination's directory removes everything beneath it.
	r := write(t, w, statestore.Change{Dir: "dev-1", Replace: true})
	if !r.Changed {
		t.Fatal("removal reported no change")
	}
	for _, k := range s.Keys(t, bucket) {
		if strings.HasPrefix(k, "clusters/dev-1/") {
			t.Fatalf("%s left after removing dev-1", k)
		}
	}
	if ok, _ := w.Exists("dev-2/resources"); !ok {
		t.Fatal("dev-2 lost")
	}
	if d := s.FluxDigest(t, bucket, "clusters"); d != r.Commit {
		t.Fatalf("revision %s, Flux would compute %s", r.Commit, d)
	}
}

// Names can never leave the writer's prefix: bad Changes are refused
// before any request, and whatever is accepted lands under the prefix.
func TestNamesNeverEscapeThePrefix(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	s.Put(t, bucket, "outside.yaml", []byte("kept"))
	w := open(t, s, "clusters/prod")
	for _, c := range []statestore.Change{
		{Dir: "../x", Files: map[string][]byte{"a": nil}},
		{Dir: "dev/../../../x"},
		{Dir: "/abs", Replace: true},
		{Dir: "dev", Files: map[string][]byte{"../../outside.yaml": []byte("x")}},
		{Dir: "dev", Files: map[string][]byte{"a/b": []byte("x")}},
		{Dir: "dev/.", Replace: true},
		{Dir: "", Replace: true},
		{Dir: "dev\\..\\..", Replace: true},
		{Dir: bucketstate.ControlDir, Files: map[string][]byte{bucketstate.MarkerFile: []byte("{}")}},
	} {
		if _, err := w.Write(ctx(t), "hostile", c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	write(t, w, request("dev", "ok", "x"))
	write(t, w, statestore.Change{Dir: "dev", Replace: true})
	keys := s.Keys(t, bucket)
	for _, k := range keys {
		if k != "outside.yaml" && !strings.HasPrefix(k, "clusters/prod/") {
			t.Errorf("%s written outside the prefix", k)
		}
	}
	if string(s.Get(t, bucket, "outside.yaml")) != "kept" {
		t.Fatal("an object outside the prefix changed")
	}
	if _, err := bucketstate.Open(bucketstate.Config{Endpoint: s.Endpoint, Bucket: bucket, Root: "../up"}); err == nil {
		t.Fatal("a root with .. accepted")
	}
}

func TestOutageFailsWritesThenConverges(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	write(t, w, request("dev-1", "before", "b"))
	s.Proxy.Stop()
	if _, _, err := w.Refresh(ctx(t)); err == nil {
		t.Fatal("Refresh succeeded with the server stopped")
	}
	if _, err := w.Write(ctx(t), "during", request("dev-1", "during", "d")); err == nil {
		t.Fatal("Write succeeded with the server stopped")
	}
	if ok, _ := w.Exists("dev-1/resources/team-a/dynamodb/before"); !ok {
		t.Fatal("a failed listing forgot what the store holds")
	}
	if err := s.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
	r := write(t, w, request("dev-1", "during", "d"))
	keys := strings.Join(s.Keys(t, bucket), " ")
	if !r.Changed || !strings.Contains(keys, "during/table.yaml") || !strings.Contains(keys, "before/table.yaml") {
		t.Fatalf("after the outage: %+v %s", r, keys)
	}
}

// While a batch is half written, the objects it did write belong to no
// recorded revision yet: a write of the same content must not be answered
// from the index with the revision before them.
func TestHalfWrittenBatchIsNotAnsweredFromTheIndex(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	before := write(t, w, request("dev-1", "a", "1")).Commit
	s.FailPuts("/b/") // b fails, and the SDK and the writer retry it for seconds
	failed := make(chan error, 1)
	go func() {
		_, err := w.Write(ctx(t), "half", request("dev-1", "a", "2"), request("dev-1", "b", "2"))
		failed <- err
	}()
	testenv.WaitFor(t, 30*time.Second, "a's new content in the bucket", func() (bool, string) {
		got := string(s.Get(t, bucket, "clusters/dev-1/resources/team-a/dynamodb/a/table.yaml"))
		return got == "2", got
	})
	r := write(t, w, request("dev-1", "a", "2"))
	if err := <-failed; err == nil {
		t.Fatal("the write succeeded although a put failed")
	}
	if r.Commit == before || r.Commit != s.FluxDigest(t, bucket, "clusters") {
		t.Fatalf("revision %.12s for a's new content; before %.12s, the bucket holds %.12s", r.Commit, before, s.FluxDigest(t, bucket, "clusters"))
	}
}

func TestDriftIsSeenAndRepaired(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	write(t, w, request("dev-1", "a", "a"), request("dev-1", "b", "b"))
	if _, moved, err := w.Refresh(ctx(t)); err != nil || moved {
		t.Fatalf("own writes seen as drift: %v %v", moved, err)
	}
	s.Delete(t, bucket, "clusters/dev-1/resources/team-a/dynamodb/a/table.yaml")
	s.Put(t, bucket, "clusters/dev-1/resources/team-a/dynamodb/b/table.yaml", []byte("edited"))
	s.Put(t, bucket, "clusters/other/file.yaml", []byte("someone else's"))
	_, moved, err := w.Refresh(ctx(t))
	if err != nil || !moved {
		t.Fatalf("drift not seen: %v %v", moved, err)
	}
	r := write(t, w, request("dev-1", "a", "a"), request("dev-1", "b", "b"))
	if !r.Changed || string(s.Get(t, bucket, "clusters/dev-1/resources/team-a/dynamodb/b/table.yaml")) != "b" {
		t.Fatalf("not repaired: %+v", r)
	}
	if string(s.Get(t, bucket, "clusters/other/file.yaml")) != "someone else's" {
		t.Fatal("another writer's object changed")
	}
	if d := s.FluxDigest(t, bucket, "clusters"); d != r.Commit {
		t.Fatalf("revision %s, Flux would compute %s", r.Commit, d)
	}
}

// Contains orders revisions by the writer's history, which the marker
// carries across restarts.
func TestContainsAcrossRestart(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	r1 := write(t, w, request("dev-1", "a", "1")).Commit
	r2 := write(t, w, request("dev-1", "b", "2")).Commit
	w.Close()
	w2 := open(t, s, "clusters")
	if _, _, err := w2.Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	r3 := write(t, w2, request("dev-1", "c", "3")).Commit
	for _, tt := range []struct {
		head, r string
		want    bool
	}{
		{r2, r1, true}, {r1, r2, false}, {r3, r1, true}, {r3, r2, true}, {r2, r3, false}, {r3, r3, true},
	} {
		got, err := w2.Contains(tt.head, tt.r)
		if err != nil || got != tt.want {
			t.Errorf("Contains(%.8s, %.8s) = %v, %v; want %v", tt.head, tt.r, got, err, tt.want)
		}
	}
	if _, err := w2.Contains(strings.Repeat("0", 64), r1); !errors.Is(err, statestore.ErrUnknownCommit) {
		t.Errorf("unknown head: %v", err)
	}
}

func TestCheckWriteLeavesNothing(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	if err := w.CheckWrite(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if keys := s.Keys(t, bucket); len(keys) != 0 {
		t.Fatalf("write check left %v", keys)
	}
	if n := len(s.Writes()); n != 2 {
		t.Fatalf("write check made %d writes, want a put and a delete", n)
	}
}

func TestWrongCredentialsAreRefused(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w, err := bucketstate.Open(bucketstate.Config{Endpoint: s.Endpoint, Bucket: bucket, Root: "clusters", Retries: 1,
		Credentials: credentials.NewStaticCredentialsProvider("someone-else", "someone-elses-secret-access-key", "")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _, err = w.Refresh(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
		t.Fatalf("Refresh with a wrong key: %v", err)
	}
	if strings.Contains(err.Error(), "someone-elses-secret-access-key") {
		t.Fatal("the error names the secret")
	}
}

func TestDirs(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	write(t, w, request("dev-1", "a", "1"), request("dev-1", "b", "2"),
		statestore.Change{Dir: "dev-1/resources", Files: map[string][]byte{statestore.CanaryFile: []byte("c")}})
	dirs, err := w.Dirs("dev-1/resources", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range dirs {
		got = append(got, d.Path)
		if d.When.IsZero() {
			t.Errorf("%s has no time", d.Path)
		}
	}
	sort.Strings(got)
	if want := "dev-1/resources/team-a/dynamodb/a dev-1/resources/team-a/dynamodb/b"; strings.Join(got, " ") != want {
		t.Fatalf("Dirs = %v", got)
	}
	list, err := w.List("dev-1/resources", 3)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(list)
	if !slices.Equal(list, got) {
		t.Fatalf("List = %v, want %v", list, got)
	}
}

// TestKeyTooLongFailsAlone: a Write whose key the bucket refuses (over
// S3's 1,024 bytes) fails with the store's message as a refusal, not
// retried, and a Write sent with it is written.
func TestKeyTooLongFailsAlone(t *testing.T) {
	s := testenv.StartS3(t, bucket)
	w := open(t, s, "clusters")
	long := request("dev-1", strings.Repeat("n", 200)+"/"+strings.Repeat("n", 200)+"/"+strings.Repeat("n", 200)+"/"+
		strings.Repeat("n", 200)+"/"+strings.Repeat("n", 200), "a: 1\n")
	errs := make(chan error, 2)
	for _, c := range []statestore.Change{long, request("dev-1", "orders", "a: 2\n")} {
		go func() {
			_, err := w.Write(ctx(t), c.Dir, c)
			errs <- err
		}()
	}
	var refused, failed int
	for range 2 {
		switch err := <-errs; {
		case errors.Is(err, statestore.ErrRefused) && strings.Contains(err.Error(), "KeyTooLongError"):
			refused++
		case err != nil:
			t.Errorf("write: %v", err)
			failed++
		}
	}
	if refused != 1 || failed != 0 {
		t.Errorf("%d refused (want 1), %d failed otherwise", refused, failed)
	}
	if keys := s.Keys(t, bucket); !slices.Contains(keys, "clusters/dev-1/resources/team-a/dynamodb/orders/table.yaml") {
		t.Errorf("keys %v: the good write is missing", keys)
	}
}
