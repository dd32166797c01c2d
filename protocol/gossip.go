package protocol

import (
	"errors"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// Gossip messages of the syncinfo and tx topics. Their author is the peer
// that signed the pubsub message (GossipSub with strict signing), so the
// messages do not name it again.

// Size limits of gossip messages, checked before decoding allocates.
const (
	// MaxSyncInfoMsgSize caps an encoded SyncInfoMsg.
	MaxSyncInfoMsgSize = MaxSyncInfoSize + 8
	// MaxTxMsgTxs caps the transactions of one TxMsg.
	MaxTxMsgTxs = 1024
	// MaxTxMsgSize caps an encoded TxMsg. A sender batches transactions up
	// to this size; one transaction of chain.MaxTxSize always fits.
	MaxTxMsgSize = 512 << 10
)

// ErrBadGossip is the reason of gossip message validation errors: a message
// whose shape breaks the protocol.
var ErrBadGossip = errors.New("protocol: malformed gossip message")

// SyncInfoMsg is the syncinfo topic's message: how far its author has got.
// A node publishes it when its SyncInfo changes and periodically; a node that
// receives one ahead of its own state syncs from the author first.
type SyncInfoMsg struct {
	_        struct{} `cbor:",toarray"`
	SyncInfo chain.SyncInfo
}

// DecodeSyncInfoMsg decodes a SyncInfoMsg of at most MaxSyncInfoMsgSize
// bytes. Malformed bytes give an error wrapping chain.ErrDecode, the
// sender's fault. Signatures are not checked.
func DecodeSyncInfoMsg(data []byte) (*SyncInfoMsg, error) {
	var m SyncInfoMsg
	if err := chain.Decode(data, MaxSyncInfoMsgSize, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// TxMsg is the tx topic's message: transactions new to their author, in the
// order it received them.
type TxMsg struct {
	_   struct{} `cbor:",toarray"`
	Txs [][]byte
}

// Validate checks the message's shape: 1 to MaxTxMsgTxs transactions of 1 to
// chain.MaxTxSize bytes each.
func (m *TxMsg) Validate() error {
	if len(m.Txs) == 0 || len(m.Txs) > MaxTxMsgTxs {
		return fmt.Errorf("%w: %d transactions, want 1 to %d", ErrBadGossip, len(m.Txs), MaxTxMsgTxs)
	}
	for i, tx := range m.Txs {
		if len(tx) == 0 || len(tx) > chain.MaxTxSize {
			return fmt.Errorf("%w: transaction %d is %d bytes, want 1 to %d", ErrBadGossip, i, len(tx), chain.MaxTxSize)
		}
	}
	return nil
}

// DecodeTxMsg decodes a TxMsg of at most MaxTxMsgSize bytes and validates its
// shape. Malformed bytes give an error wrapping chain.ErrDecode, a bad shape
// one wrapping ErrBadGossip; either is the sender's fault.
func DecodeTxMsg(data []byte) (*TxMsg, error) {
	var m TxMsg
	if err := chain.Decode(data, MaxTxMsgSize, &m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
