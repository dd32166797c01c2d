package syncer

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
)

// walk runs the retrievals of one FetchQuorumCert, newest blocks first.
// Pipelined, it fetches ahead: as soon as a response to the current
// retrieval passes the structural checks, the retrieval of the blocks before
// it starts, from the QC of the response's last block, while the response's
// signatures are verified. Until that QC is verified the speculative
// retrieval's outcomes are held back (no score, no ban: an invalid QC must
// not turn honest answers into penalties); if the response turns out
// invalid, the speculative retrieval is cancelled and its result dropped,
// and the current retrieval goes on with its next candidate as usual. Not
// pipelined, it asks one retrieval at a time, as the seed does. A walk is
// used by one goroutine.
type walk struct {
	m         *Manager
	ctx       context.Context
	preferred peer.ID
	banned    *peerSet
	pipelined bool
	spec      *fetch // the speculative retrieval, if any
}

// fetch is one retrieval running on its own goroutine.
type fetch struct {
	qc     *chain.QuorumCert
	from   *chain.Block // the unverified block whose QC qc is; nil if trusted
	cancel context.CancelFunc
	peek   chan offer // the latest structurally valid response, or its withdrawal
	done   chan struct{}
	blocks []*chain.Block // set when done is closed
	err    error

	mu        sync.Mutex
	confirmed bool // outcomes go to record, else to held
	record    recordFunc
	held      []heldOutcome
}

// offer is the last block of a response that passed the structural checks
// and the peer that sent it; a nil block withdraws the peer's offer.
type offer struct {
	last *chain.Block
	peer peer.ID
}

type heldOutcome struct {
	peer    peer.ID
	outcome Outcome
	latency time.Duration
}

// retrieve returns the blocks ending with the one qc certifies, from the
// speculative retrieval if it was of qc, else from a new retrieval.
func (w *walk) retrieve(qc *chain.QuorumCert) ([]*chain.Block, error) {
	if !w.pipelined {
		n, target := w.request(qc)
		return w.m.retriever.RetrieveBlocksForQC(w.ctx, qc, n, target, w.preferred, w.banned)
	}
	f := w.spec
	w.spec = nil
	switch {
	case f != nil && f.qc == qc:
		f.confirm()
	default:
		if f != nil {
			f.abort()
		}
		f = w.start(qc, nil, "")
	}
	for {
		select {
		case o := <-f.peek:
			w.speculate(o)
		case <-f.done:
			f.cancel()
			return f.blocks, f.err
		}
	}
}

// request returns the size and target of the request for the blocks ending
// with the one qc certifies: as many as BlocksPerRequest allows, stopping at
// the closest block the node is likely to have — its highest certified block
// when qc is above it (a node that follows the chain closely then fetches
// only the new blocks), else the root. If qc's chain does not pass through
// the target, the walk simply goes on until it meets a known block.
func (w *walk) request(qc *chain.QuorumCert) (int, chain.Hash) {
	known := w.m.store.Root().Info
	if _, hc := w.m.store.HighestCertifiedBlock(); hc.Round < qc.Round() {
		known = hc
	}
	n := min(uint64(w.m.cfg.BlocksPerRequest), qc.Round()-known.Round)
	var target chain.Hash
	if n > 1 {
		target = known.ID
	}
	return int(n), target
}

// speculate starts the retrieval of the blocks before o.last, an unverified
// block, unless they are already there or below the root; it asks o.peer
// last, so that a peer whose answer fails verification is banned before it
// could be asked again. A withdrawn offer cancels the retrieval started
// from it.
func (w *walk) speculate(o offer) {
	if w.spec != nil {
		if w.spec.from == o.last {
			return
		}
		w.spec.abort()
		w.spec = nil
	}
	if o.last == nil {
		return
	}
	qc := o.last.QC()
	if qc.Round() <= w.m.store.Root().Info.Round || w.m.store.BlockExists(qc.CertifiedBlock().ID) {
		return
	}
	w.spec = w.start(qc, o.last, o.peer)
}

// start starts a retrieval from qc; from is the unverified block holding
// qc, or nil if qc is trusted; deferred, if not empty, is asked last.
func (w *walk) start(qc *chain.QuorumCert, from *chain.Block, deferred peer.ID) *fetch {
	ctx, cancel := context.WithCancel(w.ctx)
	f := &fetch{
		qc: qc, from: from, cancel: cancel,
		peek: make(chan offer, 1), done: make(chan struct{}),
		confirmed: from == nil, record: w.m.retriever.recorder(w.banned),
	}
	n, target := w.request(qc)
	go func() {
		defer close(f.done)
		f.blocks, f.err = w.m.retriever.retrieve(ctx, qc, n, target, w.preferred, deferred, w.banned, f.offer, f.note)
	}()
	return f
}

// stop cancels the speculative retrieval and waits for it.
func (w *walk) stop() {
	if w.spec != nil {
		w.spec.abort()
		w.spec = nil
	}
}

// offer publishes the last block of a structurally valid response from p,
// or its withdrawal (nil), the latest replacing any not yet taken. Only f's
// goroutine calls it.
func (f *fetch) offer(last *chain.Block, p peer.ID) {
	select {
	case <-f.peek:
	default:
	}
	f.peek <- offer{last: last, peer: p}
}

// note records an attempt's outcome, or holds it back while f is
// unconfirmed.
func (f *fetch) note(p peer.ID, o Outcome, latency time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.confirmed {
		f.record(p, o, latency)
		return
	}
	f.held = append(f.held, heldOutcome{peer: p, outcome: o, latency: latency})
}

// confirm marks f's QC as verified: the outcomes held back count now.
func (f *fetch) confirm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.held {
		f.record(h.peer, h.outcome, h.latency)
	}
	f.held = nil
	f.confirmed = true
}

// abort cancels f, drops what it held back, and waits for its goroutine.
func (f *fetch) abort() {
	f.cancel()
	<-f.done
}
