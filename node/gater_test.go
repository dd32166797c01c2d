package node_test

import (
	"testing"

	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// TestGaterPartitionAndHeal: blocking a peer closes the connection and
// refuses new ones; unblocking lets the bootstrapper reconnect. A partition
// blocks on both sides, as the testnet does: a dial to a peer that blocked
// the dialer may complete its handshake on the dialer's side before the
// peer closes it.
func TestGaterPartitionAndHeal(t *testing.T) {
	v := chaintest.NewValidators(41, 4)
	a := start(t, testConfig(t, "a", v.Genesis, chaintest.Key(fullNodeSeed, 0)))
	bcfg := testConfig(t, "b", v.Genesis, chaintest.Key(fullNodeSeed, 1))
	bcfg.Bootstrap = addrInfos(a)
	b := start(t, bcfg)

	connectedTo := func(want int) func() bool {
		return func() bool { return a.Status().Peers == want && b.Status().Peers == want }
	}
	waitFor(t, "bootstrap connection", connectedTo(1))

	b.Gater().Block(a.ID())
	a.Gater().Block(b.ID())
	if !b.Gater().Blocked(a.ID()) {
		t.Fatal("Blocked = false after Block")
	}
	waitFor(t, "partition", connectedTo(0))
	if err := a.Host().Connect(t.Context(), b.AddrInfo()); err == nil {
		t.Fatal("a connected to b across the partition")
	}
	if got := b.Status().Peers; got != 0 {
		t.Fatalf("b has %d peers across the partition", got)
	}

	a.Gater().Unblock(b.ID())
	b.Gater().Unblock(a.ID())
	waitFor(t, "heal", connectedTo(1))
}
