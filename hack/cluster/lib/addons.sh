# shellcheck shell=bash
# Objects applied into the running cluster: RBAC for the host's Prometheus and the NetworkPolicy
# controller, metrics-server, CoreDNS (cluster DNS), the Gateway API CRDs, Traefik and the
# platform's GatewayClass and Gateway.

node_ready() {
  [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

metrics_api_ok() {
  [ "$(kubectl_admin get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ] &&
    kubectl_admin get --raw "/apis/metrics.k8s.io/v1beta1/nodes/$NODE_NAME" >/dev/null 2>&1
}

# The ${NAME} placeholders the manifests use, and only those (a manifest may hold other $ text).
render_manifest() {
  sed -e "s/\${METRICS_SERVER_VERSION}/$METRICS_SERVER_VERSION/g" \
    -e "s|\${COREDNS_IMAGE}|$COREDNS_IMAGE|g" \
    -e "s|\${TRAEFIK_IMAGE}|$TRAEFIK_IMAGE|g" \
    -e "s/\${CLUSTER_DNS_IP}/$CLUSTER_DNS_IP/g" \
    -e "s/\${CLUSTER_DOMAIN}/$CLUSTER_DOMAIN/g" \
    -e "s/\${INGRESS_HTTP_PORT}/$INGRESS_HTTP_PORT/g" \
    -e "s/\${INGRESS_HTTPS_PORT}/$INGRESS_HTTPS_PORT/g" "$1"
}

# kubectl apply reports "unchanged" for every object when nothing moved: anything else is a change.
apply_manifest() {
  local out
  out=$(render_manifest "$1" | kubectl_admin apply -f - 2>&1) ||
    die "applying $1 failed: $out"
  if printf '%s\n' "$out" | grep -vq ' unchanged$'; then
    CHANGED=$((CHANGED + 1))
    log "applied $(basename "$1")"
  fi
}

# The standard-channel CRDs ship in the sigs.k8s.io/gateway-api module (the version Traefik
# implements); they are copied once into the version-keyed cache. They are too large for
# client-side apply's annotation, hence server-side apply, and only when the installed bundle
# version differs.
GATEWAY_API_CRDS_DIR=$CACHE_DIR/gateway-api-$GATEWAY_API_VERSION/standard

gateway_api_crd_files() {
  [ -s "$GATEWAY_API_CRDS_DIR/gateway.networking.k8s.io_httproutes.yaml" ] && return 0
  local dir
  dir=$(env -C "$CLUSTER_HACK_DIR/addons" GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
    jq -r '.Dir + "/config/crd/standard"') || die "go mod download of sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION failed"
  [ -d "$dir" ] || die "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION has no $dir"
  mkdir -p "$GATEWAY_API_CRDS_DIR.partial"
  cp "$dir"/*.yaml "$GATEWAY_API_CRDS_DIR.partial/"
  rm -rf "$GATEWAY_API_CRDS_DIR"
  mv "$GATEWAY_API_CRDS_DIR.partial" "$GATEWAY_API_CRDS_DIR"
}

ensure_gateway_api_crds() {
  local installed
  installed=$(kubectl_admin get crd httproutes.gateway.networking.k8s.io gateways.gateway.networking.k8s.io \
    gatewayclasses.gateway.networking.k8s.io grpcroutes.gateway.networking.k8s.io \
    referencegrants.gateway.networking.k8s.io backendtlspolicies.gateway.networking.k8s.io \
    -o jsonpath='{range .items[*]}{.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version}{"\n"}{end}' 2>/dev/null || true)
  if [ "$(grep -cx -- "$GATEWAY_API_VERSION" <<<"$installed")" = 6 ]; then
    return 0
  fi
  local out
  gateway_api_crd_files
  out=$(kubectl_admin apply --server-side --force-conflicts -f "$GATEWAY_API_CRDS_DIR" 2>&1) ||
    die "applying the Gateway API CRDs failed: $out"
  # Right after a create, a CRD may have no status yet, and `kubectl wait` then fails at once on the missing
  # conditions instead of waiting: try again for up to 60 s.
  local tries=0
  until kubectl_admin wait --for condition=Established --timeout 60s -f "$GATEWAY_API_CRDS_DIR" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || die "the Gateway API CRDs did not become established"
    sleep 2
  done
  CHANGED=$((CHANGED + 1))
  log "installed the Gateway API $GATEWAY_API_VERSION standard CRDs"
}

# The controller has seen the current spec and every replica is updated and available.
deployment_ready() { # namespace name
  local state
  state=$(kubectl_admin -n "$1" get deployment "$2" -o \
    jsonpath='{.metadata.generation} {.status.observedGeneration} {.spec.replicas} {.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}' 2>/dev/null) || return 1
  awk '{ exit !($1 == $2 && $3 == $4 && $3 == $5 && $3 == $6) }' <<<"$state"
}

wait_deployment() { # namespace name timeout
  local deadline=$(($(date +%s) + $3))
  until deployment_ready "$1" "$2"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "ERROR: deployment $1/$2 not ready after $3s; its pods:"
      kubectl_admin -n "$1" get pods -o wide >&2 || true
      kubectl_admin -n "$1" describe deployment "$2" 2>/dev/null | tail -n 15 >&2 || true
      exit 1
    fi
    sleep 1
  done
}

gateway_programmed() {
  [ "$(kubectl_admin -n traefik get gateway platform -o jsonpath='{.status.conditions[?(@.type=="Programmed")].status}' 2>/dev/null)" = True ]
}

ensure_addons() {
  apply_manifest "$CLUSTER_HACK_DIR/manifests/prometheus-rbac.yaml"
  apply_manifest "$CLUSTER_HACK_DIR/manifests/metrics-server.yaml"
  apply_manifest "$CLUSTER_HACK_DIR/manifests/coredns.yaml"
  ensure_gateway_api_crds
  apply_manifest "$CLUSTER_HACK_DIR/manifests/traefik.yaml"
  apply_manifest "$CLUSTER_HACK_DIR/manifests/gateway.yaml"
  log "waiting for CoreDNS and Traefik"
  wait_deployment kube-system coredns 180
  wait_deployment traefik traefik 180
  local deadline=$(($(date +%s) + 60))
  until gateway_programmed; do
    [ "$(date +%s)" -lt "$deadline" ] || die "Gateway traefik/platform is not Programmed after 60s: $(kubectl_admin -n traefik get gateway platform -o jsonpath='{.status}' 2>&1)"
    sleep 1
  done
}
