package feedback

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// Requests other than watches still time out; watches do not.
func TestRequestTimeoutSparesWatches(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "true" {
			// A stream that outlives the timeout, then ends.
			for range 3 {
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(150 * time.Millisecond)
			}
			return
		}
		<-release // a server that never answers
	}))
	defer srv.Close()
	defer close(release)
	cfg := withRequestTimeout(&rest.Config{Host: srv.URL, Timeout: time.Hour}, 200*time.Millisecond)
	if cfg.Timeout != 0 {
		t.Fatalf("Timeout %s: it would cut watches", cfg.Timeout)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: rt}

	start := time.Now()
	_, err = c.Get(srv.URL + "/api/v1/namespaces")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("a hanging list: %v after %s, want the deadline after 200ms", err, time.Since(start))
	}
	resp, err := c.Get(srv.URL + "/api/v1/namespaces?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "xxx" {
		t.Errorf("a 450ms watch: read %q, %v; want all of it", body, err)
	}
}
