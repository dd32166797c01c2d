package p2pnode_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// modulePath is the import path of this module.
const modulePath = "github.com/p2pnode/p2pnode"

// pkgInfo is what the layering rules need to know about one package.
type pkgInfo struct {
	ImportPath string
	Imports    []string // direct imports of the non-test files
	Deps       []string // transitive closure of Imports
}

// rule constrains every package whose path is Layer or lies under it.
//   - NoDeps: module-relative paths the package must not depend on, directly
//     or transitively (checked against Deps).
//   - NoImports: import path patterns the package must not import directly
//     (checked against Imports), except the paths listed in Allow. A pattern
//     "p/..." matches p and every package below it; any other pattern matches
//     only itself.
type rule struct {
	Layer     string   // module-relative path, e.g. "chain"
	NoDeps    []string // module-relative paths
	NoImports []string // import path patterns, as described above
	Allow     []string // full import paths exempt from NoImports
}

// libp2pNetworking lists the go-libp2p host, swarm and pubsub packages that
// only node, cmd, testnet and tests may import.
var libp2pNetworking = []string{
	"github.com/libp2p/go-libp2p", // the root package builds a host
	"github.com/libp2p/go-libp2p/core/host",
	"github.com/libp2p/go-libp2p/p2p/host/...",
	"github.com/libp2p/go-libp2p/p2p/net/swarm/...",
	"github.com/libp2p/go-libp2p-pubsub/...",
}

// layeringRules encodes the import direction of docs/architecture.md:
// chain ← protocol ← syncer ← consensus ← node ← {cmd, testnet}.
var layeringRules = []rule{
	{
		Layer:  "chain",
		NoDeps: []string{"protocol", "syncer", "consensus", "node", "testnet", "cmd"},
		NoImports: []string{
			"github.com/libp2p/go-libp2p/...",
			"github.com/libp2p/go-libp2p-pubsub/...",
		},
		Allow: []string{
			"github.com/libp2p/go-libp2p/core/crypto",
			"github.com/libp2p/go-libp2p/core/peer",
		},
	},
	{
		Layer:     "protocol",
		NoDeps:    []string{"syncer", "consensus", "node", "testnet", "cmd"},
		NoImports: libp2pNetworking,
	},
	{
		Layer:     "syncer",
		NoDeps:    []string{"consensus", "node", "testnet", "cmd"},
		NoImports: libp2pNetworking,
	},
	{
		Layer:     "consensus",
		NoDeps:    []string{"node", "testnet", "cmd"},
		NoImports: libp2pNetworking,
	},
	{
		Layer:  "node",
		NoDeps: []string{"testnet", "cmd"},
	},
}

// TestLayering checks the import rules against the packages of this module
// as reported by go list. Test files are not checked: tests may import
// anything.
func TestLayering(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go binary not found: %v", err)
	}
	pkgs, err := listPackages(goBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range checkLayering(pkgs, layeringRules) {
		t.Error(v)
	}
}

// TestCheckLayering makes sure each kind of rule can fail.
func TestCheckLayering(t *testing.T) {
	mod := func(p string) string { return modulePath + "/" + p }
	tests := []struct {
		name string
		pkg  pkgInfo
		want string // substring of the single expected violation; "" for none
	}{
		{
			name: "chain may use core crypto and peer",
			pkg: pkgInfo{ImportPath: mod("chain"), Imports: []string{
				"github.com/libp2p/go-libp2p/core/crypto",
				"github.com/libp2p/go-libp2p/core/peer",
				"github.com/fxamacker/cbor/v2",
			}, Deps: []string{"github.com/libp2p/go-libp2p/core/network"}},
		},
		{
			name: "chain subpackage depends on protocol transitively",
			pkg:  pkgInfo{ImportPath: mod("chain/store"), Deps: []string{mod("protocol")}},
			want: "depends on " + mod("protocol"),
		},
		{
			name: "chain imports core/host",
			pkg:  pkgInfo{ImportPath: mod("chain"), Imports: []string{"github.com/libp2p/go-libp2p/core/host"}},
			want: "imports github.com/libp2p/go-libp2p/core/host",
		},
		{
			name: "chain imports pubsub",
			pkg:  pkgInfo{ImportPath: mod("chain/blocktree"), Imports: []string{"github.com/libp2p/go-libp2p-pubsub"}},
			want: "imports github.com/libp2p/go-libp2p-pubsub",
		},
		{
			name: "syncer depends on consensus",
			pkg:  pkgInfo{ImportPath: mod("syncer"), Deps: []string{mod("chain"), mod("consensus")}},
			want: "depends on " + mod("consensus"),
		},
		{
			name: "syncer imports swarm",
			pkg:  pkgInfo{ImportPath: mod("syncer"), Imports: []string{"github.com/libp2p/go-libp2p/p2p/net/swarm"}},
			want: "imports github.com/libp2p/go-libp2p/p2p/net/swarm",
		},
		{
			name: "syncer may use core/network",
			pkg:  pkgInfo{ImportPath: mod("syncer"), Imports: []string{"github.com/libp2p/go-libp2p/core/network"}},
		},
		{
			name: "node depends on cmd",
			pkg:  pkgInfo{ImportPath: mod("node"), Deps: []string{mod("cmd/p2pnode")}},
			want: "depends on " + mod("cmd/p2pnode"),
		},
		{
			name: "node may import pubsub",
			pkg:  pkgInfo{ImportPath: mod("node"), Imports: []string{"github.com/libp2p/go-libp2p-pubsub"}},
		},
		{
			name: "chain imports the go-libp2p root",
			pkg:  pkgInfo{ImportPath: mod("chain"), Imports: []string{"github.com/libp2p/go-libp2p"}},
			want: "imports github.com/libp2p/go-libp2p:",
		},
		{
			name: "consensus imports the go-libp2p root",
			pkg:  pkgInfo{ImportPath: mod("consensus"), Imports: []string{"github.com/libp2p/go-libp2p"}},
			want: "imports github.com/libp2p/go-libp2p:",
		},
		{
			name: "protocol imports a host subpackage",
			pkg:  pkgInfo{ImportPath: mod("protocol"), Imports: []string{"github.com/libp2p/go-libp2p/p2p/host/basic"}},
			want: "imports github.com/libp2p/go-libp2p/p2p/host/basic",
		},
		{
			name: "prefix match stops at path boundary",
			pkg:  pkgInfo{ImportPath: mod("chainx"), Deps: []string{mod("node")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkLayering([]pkgInfo{tt.pkg}, layeringRules)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("violations = %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("violations = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

// checkLayering returns one message per rule violation.
func checkLayering(pkgs []pkgInfo, rules []rule) []string {
	var violations []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !under(p.ImportPath, modulePath+"/"+r.Layer) {
				continue
			}
			for _, dep := range p.Deps {
				for _, bad := range r.NoDeps {
					if under(dep, modulePath+"/"+bad) {
						violations = append(violations, fmt.Sprintf(
							"%s depends on %s: packages under %s must not import %s (directly or transitively)",
							p.ImportPath, dep, r.Layer, bad))
					}
				}
			}
			for _, imp := range p.Imports {
				if matchesAny(imp, r.Allow) {
					continue
				}
				for _, bad := range r.NoImports {
					if matchPattern(imp, bad) {
						violations = append(violations, fmt.Sprintf(
							"%s imports %s: packages under %s must not directly import %s",
							p.ImportPath, imp, r.Layer, bad))
						break
					}
				}
			}
		}
	}
	return violations
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// matchPattern reports whether path matches pattern: "p/..." matches p and
// every package below it; any other pattern matches only itself.
func matchPattern(path, pattern string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return under(path, prefix)
	}
	return path == pattern
}

func matchesAny(path string, list []string) bool {
	for _, p := range list {
		if path == p {
			return true
		}
	}
	return false
}

// listPackages runs one go list over the module and parses, per package, a
// line of the form "ImportPath|Imports|Deps" (lists space-separated).
func listPackages(goBin string) ([]pkgInfo, error) {
	cmd := exec.Command(goBin, "list", "-e",
		"-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`,
		"./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.Bytes())
	}
	var pkgs []pkgInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		fields := strings.Split(line, "|")
		if len(fields) != 3 {
			return nil, fmt.Errorf("go list: unexpected line %q", line)
		}
		pkgs = append(pkgs, pkgInfo{
			ImportPath: fields[0],
			Imports:    strings.Fields(fields[1]),
			Deps:       strings.Fields(fields[2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("go list: reading output: %w", err)
	}
	if len(pkgs) == 0 {
		return nil, errors.New("go list: no packages")
	}
	return pkgs, nil
}
