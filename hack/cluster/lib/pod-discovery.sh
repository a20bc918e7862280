#!/usr/bin/env bash
# Pod discovery for the host's Prometheus. Debian's Prometheus is built without kubernetes_sd, so
# this loop lists the running pods from the API server (with Prometheus's own client certificate)
# and writes a file_sd target file: every pod annotated prometheus.io/scrape=true, with labels
# namespace, pod, app, slot and track. Prometheus picks up changes to the file through inotify.
#
# usage: pod-discovery.sh API_URL PKI_DIR OUTPUT_FILE INTERVAL_SECONDS
set -uo pipefail
api=$1 pki=$2 out=$3 interval=$4
tmp=$out.tmp
while true; do
  if curl -sf --max-time 10 --cacert "$pki/ca.crt" --cert "$pki/prometheus.crt" --key "$pki/prometheus.key" \
    "$api/api/v1/pods?fieldSelector=status.phase%3DRunning" |
    jq -S '[.items[]
        | select(.metadata.annotations["prometheus.io/scrape"] == "true" and (.status.podIP // "") != "")
        | {targets: [.status.podIP + ":" + (.metadata.annotations["prometheus.io/port"] // "80")],
           labels: ({
             __metrics_path__: (.metadata.annotations["prometheus.io/path"] // "/metrics"),
             namespace: .metadata.namespace,
             pod: .metadata.name,
             app: (.metadata.labels["app.kubernetes.io/name"] // ""),
             slot: (.metadata.labels["deploy.userservice.io/slot"] // ""),
             track: (.metadata.labels["deploy.userservice.io/track"] // "")
           } | with_entries(select(.value != "")))}]' >"$tmp"; then
    cmp -s "$tmp" "$out" || mv "$tmp" "$out"
  else
    echo "$(date -u +%FT%TZ) listing pods from $api failed; keeping the previous targets" >&2
  fi
  sleep "$interval"
done
