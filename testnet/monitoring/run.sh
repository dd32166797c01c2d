#!/usr/bin/env bash
# Starts Prometheus and Grafana against a running local testnet, from the
# binaries on PATH, and stops them on Ctrl-C:
#
#   testnet/monitoring/run.sh TESTNET_DIR
#
# TESTNET_DIR is the directory `p2pnode testnet` prints on its first line
# (it holds prometheus-targets.json). Prometheus listens on
# 127.0.0.1:9090 (PROM_ADDR), Grafana on 127.0.0.1:3000 (GRAFANA_ADDR).
# Either one that is not installed is skipped with a note; with Docker,
# compose.yaml beside this script starts both instead. Prometheus also
# serves preview.html, a plain rendering of the dashboard's panels, at
# /user/preview.html.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [[ $# -ne 1 || ! -f "$1/prometheus-targets.json" ]]; then
	echo "usage: $0 TESTNET_DIR   (a directory holding prometheus-targets.json)" >&2
	exit 2
fi
net=$(cd "$1" && pwd)
prom_addr=${PROM_ADDR:-127.0.0.1:9090}
graf_addr=${GRAFANA_ADDR:-127.0.0.1:3000}
work="$net/monitoring"
mkdir -p "$work/prometheus-data" "$work/grafana-data"

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if command -v prometheus >/dev/null; then
	sed "s|/testnet/prometheus-targets.json|$net/prometheus-targets.json|" "$here/prometheus.yml" >"$work/prometheus.yml"
	prometheus --config.file="$work/prometheus.yml" --web.listen-address="$prom_addr" \
		--storage.tsdb.path="$work/prometheus-data" --web.user-assets="$here" >"$work/prometheus.log" 2>&1 &
	pids+=($!)
	echo "prometheus: http://$prom_addr (log $work/prometheus.log)"
	echo "preview:    http://$prom_addr/user/preview.html (the dashboard's panels, drawn without Grafana)"
else
	echo "prometheus not on PATH: skipped (Debian: apt-get install prometheus)" >&2
fi

grafana=""
for g in grafana grafana-server; do
	if command -v "$g" >/dev/null; then grafana=$g; break; fi
done
if [[ -n "$grafana" ]]; then
	home=${GRAFANA_HOME:-/usr/share/grafana}
	args=(--homepath "$home")
	[[ $grafana == grafana ]] && args=(server "${args[@]}")
	GF_SERVER_HTTP_ADDR=${graf_addr%:*} GF_SERVER_HTTP_PORT=${graf_addr##*:} \
		GF_PATHS_DATA="$work/grafana-data" GF_PATHS_PROVISIONING="$here/grafana/provisioning" \
		GF_P2PNODE_DASHBOARDS="$here" GF_AUTH_ANONYMOUS_ENABLED=true GF_AUTH_ANONYMOUS_ORG_ROLE=Viewer \
		GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH="$here/dashboard.json" \
		"$grafana" "${args[@]}" >"$work/grafana.log" 2>&1 &
	pids+=($!)
	echo "grafana:    http://$graf_addr (dashboard \"p2pnode testnet\"; log $work/grafana.log)"
else
	echo "grafana not on PATH: skipped (see docs/operations.md, Dashboards)" >&2
fi

if ((${#pids[@]} == 0)); then
	exit 1
fi
echo "Ctrl-C stops them."
wait -n "${pids[@]}" || true
