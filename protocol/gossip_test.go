package protocol_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
)

func gossipSyncInfo(tb testing.TB) chain.SyncInfo {
	tb.Helper()
	v := chaintest.NewValidators(7, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 16})
	nodes := b.Extend(b.Genesis(), 4)
	tc := v.SignTC(6, v.All())
	return chain.SyncInfo{HighestCommitCert: nodes[3].QC, HighestQC: nodes[3].QC, HighestTC: &tc}
}

func mustEncode(tb testing.TB, v any) []byte {
	tb.Helper()
	enc, err := chain.Encode(v)
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

func TestTxMsgValidate(t *testing.T) {
	many := make([][]byte, protocol.MaxTxMsgTxs+1)
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	tests := []struct {
		name    string
		txs     [][]byte
		wantErr error
	}{
		{"one", [][]byte{{1}}, nil},
		{"largest tx", [][]byte{make([]byte, chain.MaxTxSize)}, nil},
		{"most txs", many[:protocol.MaxTxMsgTxs], nil},
		{"none", nil, protocol.ErrBadGossip},
		{"too many", many, protocol.ErrBadGossip},
		{"empty tx", [][]byte{{1}, {}}, protocol.ErrBadGossip},
		{"tx too large", [][]byte{make([]byte, chain.MaxTxSize+1)}, protocol.ErrBadGossip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := protocol.TxMsg{Txs: tt.txs}
			if err := m.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeGossip(t *testing.T) {
	si := gossipSyncInfo(t)
	tests := []struct {
		name    string
		data    []byte
		decode  func([]byte) error
		wantErr error
	}{
		{"sync info", mustEncode(t, &protocol.SyncInfoMsg{SyncInfo: si}), decodeSyncInfo, nil},
		{"sync info garbage", []byte{0xff, 0x00}, decodeSyncInfo, chain.ErrDecode},
		{"sync info trailing", append(mustEncode(t, &protocol.SyncInfoMsg{SyncInfo: si}), 0), decodeSyncInfo, chain.ErrDecode},
		{"sync info oversize", make([]byte, protocol.MaxSyncInfoMsgSize+1), decodeSyncInfo, chain.ErrDecode},
		{"tx", mustEncode(t, &protocol.TxMsg{Txs: [][]byte{{1, 2}}}), decodeTx, nil},
		{"tx no txs", mustEncode(t, &protocol.TxMsg{Txs: [][]byte{}}), decodeTx, protocol.ErrBadGossip},
		{"tx wrong type", mustEncode(t, &protocol.SyncInfoMsg{SyncInfo: si}), decodeTx, chain.ErrDecode},
		{"tx oversize", make([]byte, protocol.MaxTxMsgSize+1), decodeTx, chain.ErrDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.decode(tt.data); !errors.Is(err, tt.wantErr) {
				t.Fatalf("decode = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func decodeSyncInfo(data []byte) error { _, err := protocol.DecodeSyncInfoMsg(data); return err }
func decodeTx(data []byte) error       { _, err := protocol.DecodeTxMsg(data); return err }

func FuzzDecodeSyncInfoMsg(f *testing.F) {
	si := gossipSyncInfo(f)
	f.Add(mustEncode(f, &protocol.SyncInfoMsg{SyncInfo: si}))
	si.HighestTC = nil
	f.Add(mustEncode(f, &protocol.SyncInfoMsg{SyncInfo: si}))
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, protocol.DecodeSyncInfoMsg) })
}

func FuzzDecodeTxMsg(f *testing.F) {
	f.Add(mustEncode(f, &protocol.TxMsg{Txs: [][]byte{{1}, {2, 3}}}))
	f.Add(mustEncode(f, &protocol.TxMsg{Txs: [][]byte{bytes.Repeat([]byte{7}, 300)}}))
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, protocol.DecodeTxMsg) })
}
