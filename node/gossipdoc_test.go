package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocGossipParameters checks the GossipSub parameter table of
// docs/protocol.md section 8.2 against the router's options.
func TestDocGossipParameters(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i := strings.Index(doc, "\n#### GossipSub parameters\n")
	if i < 0 {
		t.Fatal("docs/protocol.md has no GossipSub parameter table")
	}
	rows := map[string]string{}
	for _, line := range strings.Split(doc[i:], "\n")[3:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) == 2 {
			rows[strings.TrimSpace(cells[0])] = strings.TrimSpace(cells[1])
		}
	}
	p, th := gossipParams(), peerScoreThresholds()
	want := map[string]string{
		"D":                             fmt.Sprint(p.D),
		"Dlo":                           fmt.Sprint(p.Dlo),
		"Dhi":                           fmt.Sprint(p.Dhi),
		"Dscore":                        fmt.Sprint(p.Dscore),
		"Dout":                          fmt.Sprint(p.Dout),
		"Dlazy":                         fmt.Sprint(p.Dlazy),
		"gossip factor":                 fmt.Sprint(p.GossipFactor),
		"history length / gossip":       fmt.Sprintf("%d / %d heartbeats", p.HistoryLength, p.HistoryGossip),
		"heartbeat":                     fmt.Sprintf("%g s (first after %d ms)", p.HeartbeatInterval.Seconds(), p.HeartbeatInitialDelay.Milliseconds()),
		"fanout TTL":                    fmt.Sprintf("%g s", p.FanoutTTL.Seconds()),
		"prune backoff":                 fmt.Sprintf("%g s", p.PruneBackoff.Seconds()),
		"unsubscribe backoff":           fmt.Sprintf("%g s", p.UnsubscribeBackoff.Seconds()),
		"max message size":              fmt.Sprintf("%s bytes", commas(maxPubsubMessage)),
		"gossip threshold":              fmt.Sprint(th.GossipThreshold),
		"publish threshold":             fmt.Sprint(th.PublishThreshold),
		"graylist threshold":            fmt.Sprint(th.GraylistThreshold),
		"accept PX threshold":           fmt.Sprint(th.AcceptPXThreshold),
		"opportunistic graft threshold": fmt.Sprint(th.OpportunisticGraftThreshold),
	}
	for name, w := range want {
		got, ok := rows[name]
		if !ok {
			t.Errorf("table has no row %q", name)
			continue
		}
		if got != w && !strings.HasPrefix(got, w+" ") {
			t.Errorf("row %q: doc %q, code %q", name, got, w)
		}
	}
}

// commas writes n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
