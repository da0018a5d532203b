package gitstate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// seed writes n files in directories of 100, as requests would be laid out.
func seed(b *testing.B, w *gitstate.Writer, n int) {
	b.Helper()
	var changes []statestore.Change
	for i := 0; i < n; i++ {
		dir := fmt.Sprintf("d%d/resources/ns-%d/p/r-%d", i%10, i/100%100, i)
		changes = append(changes, file(dir, "table.yaml", fmt.Sprintf("n: %d\n", i)))
		if len(changes) == 10000 || i == n-1 {
			if _, err := w.Write(context.Background(), "seed", changes...); err != nil {
				b.Fatal(err)
			}
			changes = nil
		}
	}
}

// BenchmarkCommitOneFile measures one changed file, committed and pushed,
// in repositories of growing size: the cost should not grow with it.
func BenchmarkCommitOneFile(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			g := testenv.StartGitServer(b)
			w := openB(b, g.NewRepo(b, "bench"))
			seed(b, w, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := file("d0/resources/bench/p/one", "table.yaml", fmt.Sprintf("i: %d\n", i))
				if _, err := w.Write(context.Background(), "one", c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPushBatch measures one commit of 1,000 changed files.
func BenchmarkPushBatch(b *testing.B) {
	g := testenv.StartGitServer(b)
	w := openB(b, g.NewRepo(b, "bench"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		changes := make([]statestore.Change, 1000)
		for j := range changes {
			changes[j] = file(fmt.Sprintf("d/resources/ns/p/r-%d", j), "table.yaml", fmt.Sprintf("i: %d\n", i))
		}
		if _, err := w.Write(context.Background(), "batch", changes...); err != nil {
			b.Fatal(err)
		}
	}
}

func openB(b *testing.B, url string) *gitstate.Writer {
	w, err := gitstate.Open(gitstate.Config{URL: url, Dir: b.TempDir(),
		Auth: gitstate.BasicAuth(testenv.GitUser, testenv.GitPassword), MaxBatch: 10000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Close)
	return w
}
