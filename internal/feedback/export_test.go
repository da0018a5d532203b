package feedback

import "time"

// SetRequestTimeout sets the timeout of requests to destinations for one
// test (and returns a function restoring it), so that a test can see what
// it applies to without waiting 30 s.
func SetRequestTimeout(d time.Duration) (restore func()) {
	old := requestTimeout
	requestTimeout = d
	return func() { requestTimeout = old }
}
