package gitstate

import "testing"

func TestRollUpCount(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int64
		want  int
	}{
		{"one pack is left alone", []int64{5}, 1},
		{"two are merged", []int64{1, 100}, 2},
		// After a merge the big pack stays until the small ones add up
		// to half its size: each object is rewritten O(log n) times.
		{"a big pack stays", []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1000}, 10},
		{"equal packs all merge", []int64{4, 4, 4, 4}, 4},
		{"a geometric series merges only the two smallest", []int64{1, 3, 10, 30, 100}, 2},
		{"the next pack joins when at most twice the sum", []int64{1, 1, 4, 13}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rollUpCount(tt.sizes); got != tt.want {
				t.Errorf("rollUpCount(%v) = %d, want %d", tt.sizes, got, tt.want)
			}
		})
	}
}
