//go:build unix

package store_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// helperEnv names the store file TestHelperWriter writes to; the helper does
// nothing without it.
const helperEnv = "P2PNODE_STORE_HELPER_PATH"

// killFixture is the chain both the helper and the test build: equal seeds
// give equal chains.
func killFixture() fixture { return newFixture(31, 20) }

// TestHelperWriter is the child process of TestKill: it saves blocks and
// commits their transactions in a loop, printing "committed <version>" after
// each commit returns, and every seventh commit prunes the history but the
// last 100 versions, printing "pruned <version>", until it is killed.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process of TestKill")
	}
	f := killFixture()
	st := openStore(t, path, f.v.Genesis)
	m := newLedgerSim()
	var prev, prev2 *chaintest.Node
	cur := f.b.Genesis()
	for range 100_000 {
		n := f.b.Child(cur, cur.Round()+1)
		saveNodes(t, st, n)
		if prev2 != nil {
			m.commit(t, st, prev2.Block.Payload(), n.QC.LedgerInfo())
			if prev2.Round() > 1 {
				if err := st.PruneTree([]chain.Hash{prev2.Block.QC().CertifiedBlock().ID}); err != nil {
					t.Fatal(err)
				}
			}
			fmt.Printf("committed %d\n", len(m.txs))
			if v := uint64(len(m.txs)); v > 100 && prev2.Round()%7 == 0 {
				w, err := st.Prune(v - 100)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Printf("pruned %d\n", w)
			}
		}
		prev2, prev, cur = prev, n, n
	}
}

func TestKill(t *testing.T) {
	path := tempPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var last, pruned uint64
	for lines := 0; lines < 40 && sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "pruned "); ok {
			if pruned, err = strconv.ParseUint(v, 10, 64); err != nil {
				t.Fatal(err)
			}
			continue
		}
		v, ok := strings.CutPrefix(sc.Text(), "committed ")
		if !ok {
			continue
		}
		if last, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
		lines++
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if last == 0 {
		t.Fatal("the helper committed nothing")
	}

	f := killFixture()
	st := openStore(t, path, f.v.Genesis)
	defer st.Close()
	rd, err := st.Recover()
	if err != nil {
		t.Fatalf("Recover after SIGKILL: %v", err)
	}
	c, err := st.Committed()
	if err != nil {
		t.Fatal(err)
	}
	if c.Version < last {
		t.Fatalf("ledger at version %d after SIGKILL, the helper had committed %d", c.Version, last)
	}
	if w, err := st.Earliest(); err != nil || w < pruned || pruned == 0 {
		t.Fatalf("history kept from version %d (%v) after SIGKILL, the helper had pruned to %d", w, err, pruned)
	}
	// The ledger is a prefix of the chain the helper built.
	var nodes []*chaintest.Node
	cur := f.b.Genesis()
	for uint64(len(txsOf(nodes))) < c.Version {
		cur = f.b.Child(cur, cur.Round()+1)
		nodes = append(nodes, cur)
	}
	m := newLedgerSim()
	m.apply(m.batch(txsOf(nodes), c.LedgerInfo))
	checkLedger(t, st, m)
	if rd.Root.Block.ID != nodes[len(nodes)-1].Block.ID || rd.SyncTarget != nil {
		t.Fatalf("root %v, want %v", rd.Root.Block, nodes[len(nodes)-1].Block)
	}
	t.Logf("killed after version %d was printed (pruned to %d); recovered version %d, root round %d, %d blocks above it",
		last, pruned, c.Version, rd.Root.Block.Round(), len(rd.Blocks))
}
