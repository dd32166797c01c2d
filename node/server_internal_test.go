package node

import (
	"testing"
	"time"
)

// TestResponseTimeout: a response's write deadline grows with its size at
// the minimum rate, so that 16 MiB to a client reading at 256 KiB/s is not
// cut off, and a small response keeps the base timeout.
func TestResponseTimeout(t *testing.T) {
	l := DefaultConfig().Limits
	for _, tc := range []struct {
		bytes int
		want  time.Duration
	}{
		{0, 30 * time.Second},
		{256 << 10, 31 * time.Second},
		{16 << 20, 30*time.Second + 64*time.Second},
	} {
		if got := responseTimeout(l, tc.bytes); got != tc.want {
			t.Errorf("responseTimeout(%d bytes) = %v, want %v", tc.bytes, got, tc.want)
		}
	}
}
