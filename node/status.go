package node

// Status is a snapshot of a node, as GET /status returns it.
type Status struct {
	ChainID string `json:"chain_id"`
	PeerID  string `json:"peer_id"`
	// Role is "validator" or "fullnode".
	Role string `json:"role"`
	// Round is consensus's current round on a validator; on a full node,
	// the round after the highest QC.
	Round          uint64 `json:"round"`
	HighestQCRound uint64 `json:"highest_qc_round"`
	// CommittedRound, CommittedVersion and CommittedBlockID describe the
	// ledger's last committed block.
	CommittedRound   uint64 `json:"committed_round"`
	CommittedVersion uint64 `json:"committed_version"`
	CommittedBlockID string `json:"committed_block_id"`
	// RootRound is the round of the block tree's root.
	RootRound   uint64   `json:"root_round"`
	Peers       int      `json:"peers"`
	Syncing     bool     `json:"syncing"`
	MempoolTxs  int      `json:"mempool_txs"`
	ListenAddrs []string `json:"listen_addrs"`
	// Consensus is set on a validator.
	Consensus *ConsensusStatus `json:"consensus,omitempty"`

	// CatchingUp: the node is more than Config.ReadyRounds rounds behind
	// BestPeerRound, the highest QC round heard from a peer; Distance is
	// how many rounds behind it the node's highest QC is (0 if not).
	CatchingUp    bool   `json:"catching_up"`
	BestPeerRound uint64 `json:"best_peer_round"`
	Distance      uint64 `json:"distance"`
	// EarliestRound is the round of the oldest committed block the node
	// can serve (its archive's first); a node that fast-forwarded has
	// nothing before the block it fast-forwarded to. With an empty
	// archive it is the committed round.
	EarliestRound uint64 `json:"earliest_round"`
	// EarliestVersion is the first version whose transaction the node
	// keeps: 0 unless it pruned its history (Config.PruneWindow).
	EarliestVersion uint64 `json:"earliest_version"`
	// StateTreeVersion is the version of the node's state tree: the
	// committed version, or below it while the tree follows a sync.
	StateTreeVersion uint64 `json:"state_tree_version"`
	// Version is the node's build version.
	Version string `json:"version"`
}

// ConsensusStatus is a validator's consensus counters.
type ConsensusStatus struct {
	HighestTCRound uint64 `json:"highest_tc_round"`
	LastVotedRound uint64 `json:"last_voted_round"`
	Timeouts       uint64 `json:"timeouts"`
	Proposals      uint64 `json:"proposals"`
	Dropped        uint64 `json:"dropped"`
}

// Status returns a snapshot of the node. It is safe for concurrent use.
func (n *Node) Status() Status {
	st := n.opened.Blocks
	committed := st.Ledger().Committed()
	qc := st.HighestQC()
	s := Status{
		ChainID:          n.cfg.Genesis.ChainID,
		PeerID:           n.host.ID().String(),
		Role:             n.role(),
		Round:            qc.Round() + 1,
		HighestQCRound:   qc.Round(),
		CommittedRound:   committed.Round,
		CommittedVersion: st.Ledger().Version(),
		CommittedBlockID: committed.ID.String(),
		RootRound:        st.Root().Info.Round,
		Peers:            len(n.host.Network().Peers()),
		Syncing:          n.mgr.Syncing(),
		MempoolTxs:       n.mempool.Len(),
	}
	h := n.Health()
	s.CatchingUp, s.BestPeerRound, s.Distance = h.CatchingUp, h.BestPeerRound, h.Distance
	s.EarliestRound = committed.Round
	if cbs, err := st.Ledger().BlocksFrom(0, 1); err == nil && len(cbs) > 0 {
		s.EarliestRound = cbs[0].Info.Round
	}
	s.EarliestVersion, _ = n.opened.Disk.Earliest()
	s.StateTreeVersion = n.opened.Ledger.TreeVersion()
	s.Version = n.build.Version
	for _, a := range n.host.Addrs() {
		s.ListenAddrs = append(s.ListenAddrs, a.String())
	}
	if n.engine != nil {
		es := n.engine.Status()
		s.Round = es.Round
		s.Consensus = &ConsensusStatus{
			HighestTCRound: es.HighestTCRound,
			LastVotedRound: es.LastVotedRound,
			Timeouts:       es.Timeouts,
			Proposals:      es.Proposals,
			Dropped:        es.Dropped,
		}
	}
	return s
}
