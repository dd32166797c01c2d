package testnet_test

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/testnet"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGenesisExample pins the worked example of docs/protocol.md section
// 3.1: testdata/genesis-example.json maps to the genesis CBOR, genesis hash,
// genesis block and block id of testdata/genesis-example.golden, and the
// document quotes those hashes.
func TestGenesisExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "genesis-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := testnet.DecodeGenesisDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := chain.Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	block := g.Block()
	benc, err := chain.Encode(block)
	if err != nil {
		t.Fatal(err)
	}
	gh := g.Hash()
	got := fmt.Sprintf("genesis %x\ngenesis_hash %s\ngenesis_block %x\ngenesis_block_id %s\n", enc, gh, benc, block.ID)
	path := filepath.Join("testdata", "genesis-example.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./testnet -run TestGenesisExample -update writes it)", err)
	}
	if got != string(want) {
		t.Fatalf("genesis example changed:\n got %s\nwant %s", got, want)
	}

	// The hashes follow from the bytes as section 2 says.
	if h := chain.HashOf(chain.DomainGenesis, g); h != gh || !strings.HasPrefix(hex.EncodeToString(enc), "83676578616d706c65") {
		t.Fatalf("genesis hash or encoding prefix differs from the documented rule")
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{gh.String(), block.ID.String(), hex.EncodeToString(enc), hex.EncodeToString(benc)} {
		if !strings.Contains(strings.Join(strings.Fields(string(doc)), ""), s) {
			t.Errorf("docs/protocol.md does not quote %s", s)
		}
	}
}
