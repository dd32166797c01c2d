package protocol_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/p2pnode/p2pnode/protocol"
)

// docTable returns the rows of the first markdown table after the line
// heading in docs/protocol.md, each row's cells trimmed and unquoted.
func docTable(t *testing.T, heading string) [][]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/protocol.md has no heading %q", heading)
	}
	var rows [][]string
	for _, line := range strings.Split(doc[i+len(heading)+2:], "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.Trim(strings.TrimSpace(c), "`"))
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		t.Fatalf("no table after %q", heading)
	}
	return rows[2:] // past the header and its rule
}

// docNumber parses a table cell such as "16,777,216 (16 MiB)"; "none" is 0.
func docNumber(t *testing.T, cell string) int {
	t.Helper()
	f, _, _ := strings.Cut(cell, " ")
	if f == "none" {
		return 0
	}
	n, err := strconv.Atoi(strings.ReplaceAll(f, ",", ""))
	if err != nil {
		t.Fatalf("table cell %q is not a number: %v", cell, err)
	}
	return n
}

// TestDocStreamLimits checks the frame-limit table of docs/protocol.md
// section 5 against the constants the node enforces.
func TestDocStreamLimits(t *testing.T) {
	rows := docTable(t, "## 5. Framing")
	limits := protocol.StreamLimits()
	if len(rows) != len(limits) {
		t.Fatalf("doc lists %d protocols, code %d", len(rows), len(limits))
	}
	for i, l := range limits {
		r := rows[i]
		if len(r) != 3 || r[0] != "/p2pnode/<chain>/"+l.Name+"/1.0.0" ||
			docNumber(t, r[1]) != l.MaxRequest || docNumber(t, r[2]) != l.MaxResponse {
			t.Errorf("doc row %q, code %+v", r, l)
		}
	}
}

// TestDocGossipLimits checks the gossip limit table of section 8.1.
func TestDocGossipLimits(t *testing.T) {
	rows := docTable(t, "### 8.1 Messages")
	limits := protocol.GossipLimits()
	if len(rows) != len(limits) {
		t.Fatalf("doc lists %d messages, code %d", len(rows), len(limits))
	}
	for i, l := range limits {
		if r := rows[i]; len(r) != 2 || r[0] != l.Message || docNumber(t, r[1]) != l.Max {
			t.Errorf("doc row %q, code %+v", r, l)
		}
	}
}
