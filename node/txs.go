package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
)

// txFlushInterval is how long the broadcaster collects local transactions
// before it gossips them in one message.
const txFlushInterval = 20 * time.Millisecond

// txBroadcaster gossips the node's local transactions (from the API and the
// load generator) on the tx topic, batched into TxMsgs of at most
// MaxTxMsgTxs transactions and MaxTxMsgSize bytes. Its queue is bounded: a
// transaction that does not fit is not gossiped (it stays in the local
// mempool). queue is safe for concurrent use; run is called once.
type txBroadcaster struct {
	in  chan []byte
	log *slog.Logger
}

func newTxBroadcaster(log *slog.Logger) *txBroadcaster {
	return &txBroadcaster{in: make(chan []byte, 4*protocol.MaxTxMsgTxs), log: log}
}

// queue schedules tx for gossip and reports whether it fit in the queue.
func (b *txBroadcaster) queue(tx []byte) bool {
	select {
	case b.in <- tx:
		return true
	default:
		return false
	}
}

// run publishes the queued transactions on topic until ctx ends.
func (b *txBroadcaster) run(ctx context.Context, topic *pubsub.Topic) {
	t := time.NewTicker(txFlushInterval)
	defer t.Stop()
	var batch [][]byte
	size := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := publish(pctx, topic, &protocol.TxMsg{Txs: batch}); err != nil && ctx.Err() == nil {
			b.log.Debug("publish txs", "txs", len(batch), "err", err)
		}
		cancel()
		batch, size = nil, 0
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			flush()
		case tx := <-b.in:
			// Leave room for the CBOR headers: 5 bytes per item at most.
			if len(batch) == protocol.MaxTxMsgTxs || size+len(tx)+5 > protocol.MaxTxMsgSize-16 {
				flush()
			}
			batch = append(batch, tx)
			size += len(tx) + 5
		}
	}
}

// loadGen is the built-in load generator: key/value transactions at a
// fixed rate, with keys and values drawn from a generator seeded by the
// configured seed and the node's id.
type loadGen struct {
	rate    float64
	size    int
	rng     *rand.Rand
	prefix  string
	mempool *Mempool
	out     *txBroadcaster
	n       uint64
}

func newLoadGen(rate float64, size int, seed uint64, self peer.ID, mp *Mempool, out *txBroadcaster) *loadGen {
	id := chain.HashBytes("p2pnode-loadgen", []byte(self))
	return &loadGen{
		rate:    rate,
		size:    size,
		rng:     rand.New(rand.NewPCG(seed, binary.BigEndian.Uint64(id[:8]))),
		prefix:  fmt.Sprintf("load/%x/", id[:4]),
		mempool: mp,
		out:     out,
	}
}

// run adds rate transactions per second (in ticks of 50 ms) until ctx
// ends.
func (g *loadGen) run(ctx context.Context) {
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	owed := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		owed += g.rate * tick.Seconds()
		for ; owed >= 1; owed-- {
			tx := g.next()
			if tx != nil && g.mempool.Add(tx) == nil {
				g.out.queue(tx)
			}
		}
	}
}

// next returns a fresh key/value transaction.
func (g *loadGen) next() []byte {
	g.n++
	key := fmt.Appendf(nil, "%s%d", g.prefix, g.rng.Uint64N(1<<20))
	value := make([]byte, g.size)
	for i := range value {
		value[i] = byte(g.rng.Uint32())
	}
	if len(value) >= 8 {
		binary.BigEndian.PutUint64(value, g.n) // distinct values, so distinct txs
	}
	tx, err := chain.EncodeKV(key, value)
	if err != nil {
		return nil // Config.Validate keeps the sizes within the format's limits
	}
	return tx
}
