package testnet

import (
	"fmt"
	"net/url"
	"path/filepath"
)

// PrometheusTargetsFile is the file Init writes beside NetworkFile: every
// node's API address in Prometheus's file-based service discovery format,
// labelled with the node's name, role and chain id, so that a Prometheus
// started against the testnet (testnet/monitoring/run.sh) scrapes each
// node's GET /metrics and the dashboard can tell the nodes apart.
const PrometheusTargetsFile = "prometheus-targets.json"

// promTargets is one entry of a Prometheus file_sd file.
type promTargets struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// writePrometheusTargets writes net's PrometheusTargetsFile into dir.
func writePrometheusTargets(dir string, net *Network) error {
	groups := make([]promTargets, 0, len(net.Nodes))
	for _, n := range net.Nodes {
		u, err := url.Parse(n.API)
		if err != nil || u.Host == "" {
			return fmt.Errorf("testnet: node %s: API %q is not a URL", n.Name, n.API)
		}
		groups = append(groups, promTargets{
			Targets: []string{u.Host},
			Labels:  map[string]string{"node": n.Name, "role": n.Role, "chain_id": net.ChainID},
		})
	}
	return writeJSON(filepath.Join(dir, PrometheusTargetsFile), groups)
}
