package chain_test

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenValues returns one value of every wire type, built deterministically
// from seed 1: the block of round 3 of a chain of four validators with two
// 16-byte transactions per block, and the certificates around it.
func goldenValues(t *testing.T) (map[string]any, map[string]chain.Hash) {
	t.Helper()
	v := chaintest.NewValidators(1, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16, Seed: 1})
	n := b.Extend(b.Genesis(), 3)[2]
	vd := chain.VoteDataFor(n.Block, n.Info)
	commit, _ := chain.CommitInfo(n.Info, n.Block.QC())
	vote := v.Signers[0].SignVote(vd, commit)
	timeout := chain.Timeout{Epoch: 1, Round: 4}
	tc := v.SignTC(4, v.Quorum())
	li := n.QC.SignedLedgerInfo
	values := map[string]any{
		"blockinfo":                &n.Info,
		"votedata":                 &vd,
		"ledgerinfo":               &li.LedgerInfo,
		"ledgerinfowithsignatures": &li,
		"quorumcert":               &n.QC,
		"timeout":                  &timeout,
		"timeoutcert":              &tc,
		"vote":                     vote,
		"block":                    n.Block,
		"genesis":                  v.Genesis,
		"validatorset":             v.Set,
	}
	hashes := map[string]chain.Hash{
		"block_id":          n.Block.ID,
		"votedata_hash":     vd.Hash(),
		"ledgerinfo_hash":   li.LedgerInfo.Hash(),
		"timeout_hash":      timeout.Hash(),
		"genesis_hash":      v.Genesis.Hash(),
		"genesis_block_id":  v.Genesis.Block().ID,
		"accumulator_root":  n.Info.ExecutedStateID,
		"tx_leaf_hash":      chain.TxLeafHash(n.Block.Payload()[0]),
		"empty_accumulator": chain.EmptyAccumulatorRoot,
	}
	return values, hashes
}

func TestGolden(t *testing.T) {
	values, hashes := goldenValues(t)
	for name, val := range values {
		t.Run(name, func(t *testing.T) {
			enc := mustEncode(t, val)
			checkGolden(t, name+".golden", hex.EncodeToString(enc)+"\n")
			// The golden bytes decode to a value that encodes to them again.
			dec := newOfSameType(val)
			if err := chain.Decode(enc, len(enc), dec); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if re := mustEncode(t, dec); string(re) != string(enc) {
				t.Fatalf("round trip changed the encoding:\n got %x\nwant %x", re, enc)
			}
		})
	}
	t.Run("hashes", func(t *testing.T) {
		var sb strings.Builder
		for _, name := range []string{
			"block_id", "votedata_hash", "ledgerinfo_hash", "timeout_hash", "genesis_hash",
			"genesis_block_id", "accumulator_root", "tx_leaf_hash", "empty_accumulator",
		} {
			fmt.Fprintf(&sb, "%s %s\n", name, hashes[name])
		}
		checkGolden(t, "hashes.golden", sb.String())
	})
}

// newOfSameType returns a pointer to a new zero value of val's type.
func newOfSameType(val any) any {
	switch val.(type) {
	case *chain.BlockInfo:
		return new(chain.BlockInfo)
	case *chain.VoteData:
		return new(chain.VoteData)
	case *chain.LedgerInfo:
		return new(chain.LedgerInfo)
	case *chain.LedgerInfoWithSignatures:
		return new(chain.LedgerInfoWithSignatures)
	case *chain.QuorumCert:
		return new(chain.QuorumCert)
	case *chain.Timeout:
		return new(chain.Timeout)
	case *chain.TimeoutCert:
		return new(chain.TimeoutCert)
	case *chain.Vote:
		return new(chain.Vote)
	case *chain.Block:
		return new(chain.Block)
	case *chain.Genesis:
		return new(chain.Genesis)
	case *chain.ValidatorSet:
		return new(chain.ValidatorSet)
	}
	panic(fmt.Sprintf("no golden type %T", val))
}

// checkGolden compares got with testdata/name, or rewrites the file with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n got %s\nwant %s", path, strings.TrimSpace(got), strings.TrimSpace(string(want)))
	}
}
