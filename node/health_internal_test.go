package node

import "testing"

func TestReadiness(t *testing.T) {
	tests := []struct {
		name           string
		lone           bool
		peers          int
		heard          bool
		distance       uint64
		wantReady      bool
		wantReason     string
		wantCatchingUp bool
	}{
		{name: "lone validator", lone: true, distance: 0, wantReady: true},
		{name: "no peers", peers: 0, heard: true, wantReason: "no peers"},
		{name: "nothing heard", peers: 2, wantReason: "no sync info from peers yet"},
		{name: "close enough", peers: 2, heard: true, distance: 10, wantReady: true},
		{name: "behind", peers: 2, heard: true, distance: 11, wantReason: "11 rounds behind the best peer (at most 10)", wantCatchingUp: true},
		{name: "behind without peers", peers: 0, heard: true, distance: 50, wantReason: "no peers", wantCatchingUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready, reason, catchingUp := readiness(tt.lone, tt.peers, tt.heard, tt.distance, 10)
			if ready != tt.wantReady || reason != tt.wantReason || catchingUp != tt.wantCatchingUp {
				t.Fatalf("readiness = %v, %q, %v; want %v, %q, %v", ready, reason, catchingUp, tt.wantReady, tt.wantReason, tt.wantCatchingUp)
			}
		})
	}
}
