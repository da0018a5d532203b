package bucketstate_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// BenchmarkWrite1000Requests: 1,000 requests written at once through one
// writer, as a burst of reconciles does, against an S3 server on loopback.
// Each iteration changes every request, so every one is a real write.
func BenchmarkWrite1000Requests(b *testing.B) {
	s := testenv.StartS3(b, bucket)
	w := open(b, s, "clusters")
	const n = 1000
	before := len(s.Writes())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for r := 0; r < n; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := request(fmt.Sprintf("dev-%d", r%10), fmt.Sprintf("r-%d", r), fmt.Sprintf("iteration: %d\n", i))
				if _, err := w.Write(ctx(b), "bench", c); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(len(s.Writes())-before)/float64(b.N*n), "objects/request")
}
