# shellcheck shell=bash
# `down`: stops exactly what `up` started (tracked PIDs), removes the pods' sandboxes through CRI,
# the iptables rules, bridge, mounts and cgroups the platform made, and restores the sysctls the
# kubelet and Docker changed. `--purge` also deletes the state directory (etcd data, PKI, registry).

crictl_rt() { crictl --runtime-endpoint "unix://$CONTAINERD_SOCK" --image-endpoint "unix://$CONTAINERD_SOCK" "$@"; }

remove_pod_sandboxes() {
  containerd_ok || return 0
  local ids
  ids=$(crictl_rt pods -q 2>/dev/null || true)
  [ -n "$ids" ] || return 0
  log "removing $(echo "$ids" | wc -l) pod sandbox(es) through CRI"
  # shellcheck disable=SC2086
  crictl_rt stopp $ids >/dev/null 2>&1 || true
  # shellcheck disable=SC2086
  crictl_rt rmp -f $ids >/dev/null 2>&1 || true
}

kill_leftover_shims() {
  local pid
  for pid in $(pgrep -f "containerd-shim.*-address $CONTAINERD_SOCK" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# Network namespaces the CNI plugins made for pods (containerd names them cni-<uuid> under /run/netns)
# that no process is in any more. Left mounted after a kubelet/containerd restart, they kept pods in
# Terminating ("device or resource busy") and made the next `up` fail until unmounted by hand.
# iproute2 makes /run/netns a shared bind mount of itself on first use; a netns mounted before that is
# hidden under it ("not mounted", then "busy" on rm). When only such leftovers remain, the bind mount is
# taken away (a plain umount, so it fails, harmlessly, while anything else is mounted in it) and they
# are removed from underneath.
remove_stale_pod_netns() {
  local ns pass left
  for pass in 1 2; do
    left=0
    for ns in /run/netns/cni-*; do
      [ -e "$ns" ] || continue
      if [ -n "$(ip netns pids "${ns##*/}" 2>/dev/null)" ]; then
        return 0 # a pod's processes are still in it: not ours to remove
      fi
      umount "$ns" 2>/dev/null || true
      rm -f "$ns" 2>/dev/null || left=1
    done
    if [ "$left" = 0 ] || [ "$pass" = 2 ] || ! mountpoint -q /run/netns || ! umount /run/netns 2>/dev/null; then
      break
    fi
  done
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] && log "could not remove the network namespace $ns"
  done
  return 0
}

unmount_state() {
  local m
  # Deepest mount points first.
  awk -v d="$STATE_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    done
}

# Chains the platform's components made (kube-proxy, kubelet, the CNI bridge plugin, a Docker engine
# that up started) and that were not there before the first up: their jumps, rules and the chains.
# Rules and chains the platform's components made (kube-proxy, kubelet, the CNI bridge plugin, a
# Docker engine that up started) and that were not there before the first up.
remove_chains_we_made() {
  local before=$RUN_DIR/iptables.before pattern='KUBE-|CNI-|uscni0' table chain rule
  [ -f "$RUN_DIR/docker.started" ] && pattern='KUBE-|CNI-|uscni0|DOCKER|docker0'
  for table in filter nat mangle; do
    while read -r rule; do
      grep -qxF -- "$table $rule" "$before" 2>/dev/null && continue
      # shellcheck disable=SC2086 # the rule is iptables -S syntax, split on purpose
      iptables -t "$table" -D ${rule#-A } 2>/dev/null || true
    done < <(iptables -t "$table" -S | grep -E -- '^-A ' | grep -E -- "$pattern" || true)
    for chain in $(iptables -t "$table" -S | awk '$1 == "-N" {print $2}' | grep -E "^($pattern)" || true); do
      grep -qxF -- "$table -N $chain" "$before" 2>/dev/null && continue
      iptables -t "$table" -F "$chain" 2>/dev/null || true
      iptables -t "$table" -X "$chain" 2>/dev/null || log "could not delete iptables chain $table/$chain"
    done
  done
}

# What the NetworkPolicy controller programmed: the jumps from INPUT/FORWARD/OUTPUT, its chains
# (flushed first, since they jump to each other) and its ipsets. kube-router v2.1.0's own cleanup
# does nothing when called without a running controller, so it is done here.
remove_netpol_rules() {
  local chain rule chains set
  for chain in INPUT FORWARD OUTPUT; do
    while read -r rule; do
      [ -n "$rule" ] || continue
      # shellcheck disable=SC2086 # the rule is iptables -S syntax, split on purpose
      eval "iptables -D ${rule#-A }" 2>/dev/null || true
    done < <(iptables -S "$chain" 2>/dev/null | grep -E -- '-j KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)$' || true)
  done
  chains=$(iptables -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-(ROUTER-|POD-FW-|NWPLCY-)/ {print $2}')
  for chain in $chains; do iptables -F "$chain" 2>/dev/null || true; done
  for chain in $chains; do iptables -X "$chain" 2>/dev/null || log "could not delete iptables chain filter/$chain"; done
  command -v ipset >/dev/null || return 0
  for set in $(ipset list -n 2>/dev/null | grep -E '^(inet6:)?(KUBE-(SRC|DST)-|TMP-[A-Z2-7]{16}$)' || true); do
    ipset destroy "$set" 2>/dev/null || log "could not destroy ipset $set"
  done
}

remove_network() {
  local dir
  for dir in -i -o; do
    while iptables -C FORWARD "$dir" "$CNI_BRIDGE" -m comment --comment "$FW_TAG" -j ACCEPT 2>/dev/null; do
      iptables -D FORWARD "$dir" "$CNI_BRIDGE" -m comment --comment "$FW_TAG" -j ACCEPT
    done
  done
  remove_chains_we_made
  ip link del "$CNI_BRIDGE" 2>/dev/null || true
  if [ -f "$RUN_DIR/docker.started" ] && ! grep -qx docker0 "$RUN_DIR/links.before" 2>/dev/null; then
    ip link del docker0 2>/dev/null || true
  fi
  # The Docker engine sets the FORWARD policy to DROP; put back what was there.
  if [ -f "$RUN_DIR/docker.started" ] && [ -s "$RUN_DIR/forward-policy.before" ]; then
    iptables -P FORWARD "$(cat "$RUN_DIR/forward-policy.before")"
  fi
  rm -f "$RUN_DIR/docker.started" "$RUN_DIR/iptables.before" "$RUN_DIR/links.before" "$RUN_DIR/forward-policy.before"
  rm -rf "$STATE_DIR/cni/ipam"
}

remove_kubepods_cgroups() {
  # Children before parents (-depth); a cgroup still holding a process stays.
  find /sys/fs/cgroup/*/kubepods* -depth -type d -exec rmdir {} \; 2>/dev/null || true
}

restore_sysctls() {
  local file=$RUN_DIR/sysctl.saved line
  [ -f "$file" ] || return 0
  while read -r line; do
    sysctl -q -w "$line" >/dev/null 2>&1 || log "could not restore sysctl $line"
  done <"$file"
  rm -f "$file"
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "run as root"
  local purge=0
  [ "${1:-}" = --purge ] && purge=1
  stop_daemon kubelet
  remove_pod_sandboxes
  stop_daemon netpol
  remove_netpol_rules
  stop_daemon kube-proxy
  if [ -x "$KUBE_BIN_DIR/kube-proxy" ]; then
    kube-proxy --cleanup >/dev/null 2>&1 || log "kube-proxy --cleanup reported an error (see its output by running it)"
  fi
  stop_daemon containerd
  kill_leftover_shims
  remove_stale_pod_netns
  stop_daemon prometheus
  stop_daemon pod-discovery
  stop_daemon kube-scheduler
  stop_daemon kube-controller-manager
  stop_daemon kube-apiserver
  stop_daemon etcd
  stop_daemon registry
  stop_daemon docker
  unmount_state
  remove_network
  remove_kubepods_cgroups
  restore_sysctls
  if [ "$purge" = 1 ]; then
    rm -rf "$STATE_DIR"
    log "purged $STATE_DIR"
  fi
  log "platform down"
}
