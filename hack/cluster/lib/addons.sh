# shellcheck shell=bash
# Objects applied into the running cluster: RBAC for the host's Prometheus and metrics-server.

node_ready() {
  [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

metrics_api_ok() {
  [ "$(kubectl_admin get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ] &&
    kubectl_admin get --raw "/apis/metrics.k8s.io/v1beta1/nodes/$NODE_NAME" >/dev/null 2>&1
}

# kubectl apply reports "unchanged" for every object when nothing moved: anything else is a change.
apply_manifest() {
  local out
  out=$(sed "s/\${METRICS_SERVER_VERSION}/$METRICS_SERVER_VERSION/g" "$1" | kubectl_admin apply -f - 2>&1) ||
    die "applying $1 failed: $out"
  if printf '%s\n' "$out" | grep -vq ' unchanged$'; then
    CHANGED=$((CHANGED + 1))
    log "applied $(basename "$1")"
  fi
}

ensure_addons() {
  apply_manifest "$CLUSTER_HACK_DIR/manifests/prometheus-rbac.yaml"
  apply_manifest "$CLUSTER_HACK_DIR/manifests/metrics-server.yaml"
}
