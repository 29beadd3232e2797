# shellcheck shell=bash
# Sourced by scripts/cluster: a REAL worker node beside the control plane (`up --real-node`).
#
#   registry    the CNCF distribution registry on 127.0.0.1:$REGISTRY_PORT, storage in $NODE_DIR/registry
#   containerd  Debian's containerd 1.6 + runc, root/state/sockets under $NODE_DIR/containerd; image
#               names users already have (docker.io, the hub's litmuschaos.docker.scarf.sh,
#               registry.k8s.io, ghcr.io, quay.io) resolve to the local registry through mirror entries
#               (hosts.toml per registry host), so `imagePullPolicy: Always` works unchanged
#   CNI         the bridge plugin on bridge $REAL_BRIDGE, host-local IPAM in $REAL_SUBNET (data in $NODE_DIR)
#   kubelet     v1.36 (scripts/build-real-bins), root dir $NODE_DIR/kubelet, pod cgroups under /$REAL_CGROUP
#
# Pods reach the apiserver through the `kubernetes` Service as in any cluster: kubelet injects
# KUBERNETES_SERVICE_HOST=10.96.0.1 and one DNAT rule (in our own nat chain) sends 10.96.0.1:443 to
# the apiserver on 127.0.0.1; route_localnet on the bridge only (it goes with the bridge) lets the
# kernel route a pod's packet to a loopback address; the serving certificate carries IP:10.96.0.1.
# That rule is the whole of what kube-proxy would do for this one Service with no endpoints
# reconciler (the apiserver advertises 127.0.0.1, which an Endpoints object refuses).
#
# Host-global things this makes, each recorded in $NODE_DIR/undo/ and undone by real_node_down:
# the bridge, the nat chain and its two jumps, the cgroup folders /$REAL_CGROUP in every v1
# hierarchy, the sysctls kubelet forces at start (restored right after it is up, and again at stop),
# mounts below $NODE_DIR, and what containerd 1.6, libcni and kubelet put in fixed host folders
# whatever their configured roots (/run/containerd, /run/netns/cni-*, /var/lib/cni,
# /var/log/containers links).
# No /etc/hosts line: the apiserver dials nodes by InternalIP first (--kubelet-preferred-address-types).

REAL_NODE=${CLUSTER_REAL_NODE_NAME:-real-node-0}
REAL_SUBNET=${CLUSTER_REAL_SUBNET:-10.244.250.0/24}
REAL_PREFIX=${REAL_SUBNET%.*}            # 10.244.250
REAL_NODE_IP=$REAL_PREFIX.1
REAL_BRIDGE=${CLUSTER_REAL_BRIDGE:-rnbr0}
REAL_CGROUP=${CLUSTER_REAL_CGROUP:-realnode}
REAL_CHAIN=${CLUSTER_REAL_CHAIN:-CC-REALNODE}
# Below the kernel's ephemeral range (32768-60999 here): at 35000 a client socket of the cluster
# once took the port between the busy check and the bind, and the real-node tier failed.
REGISTRY_PORT=${CLUSTER_REGISTRY_PORT:-25000}
KUBELET_HEALTHZ_PORT=${CLUSTER_KUBELET_HEALTHZ_PORT:-10248}
NODE_DIR=$RUN/node
SERVICE_VIP=10.96.0.1
# Registry hosts whose image names resolve to the local registry.
MIRRORED_HOSTS=(docker.io litmuschaos.docker.scarf.sh registry.k8s.io ghcr.io quay.io)
# The sysctls kubelet sets at start-up (kubelet's setupKernelTunables) and that we put back.
KUBELET_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
REAL_COMPONENTS=(registry containerd kubelet)

real_node_wanted() { [ -s "$RUN/real-node" ]; }

ctr_k8s() { ctr --address "$NODE_DIR/containerd/containerd.sock" -n k8s.io "$@"; }

registry_ready() { curl -sf --max-time 2 "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null; }
containerd_ready() { ctr --address "$NODE_DIR/containerd/containerd.sock" version >/dev/null 2>&1; }
kubelet_ready() { curl -sf --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null; }
real_node_ready() {
  [ "$(kc get node "$REAL_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# The cgroup v1 hierarchies (or the one v2 mount) where kubelet puts the pods.
cgroup_roots() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup; return; fi
  local d
  for d in /sys/fs/cgroup/*/; do
    d=${d%/}
    # unified (the v2 mount of a hybrid host) too: kubelet and runc make pod cgroups there as well.
    [ -f "$d/cgroup.procs" ] || continue
    echo "$d"
  done
}

# real_node_preflight: everything a start needs, checked before anything host-global is touched.
real_node_preflight() {
  [ "$(id -u)" = 0 ] || die "--real-node needs root (bridge, cgroups, iptables)"
  "$REPO/scripts/real-node-deps"
  REAL_BIN=$("$REPO/scripts/build-real-bins" | tail -n 1)
  [ -x "$REAL_BIN/kubelet" ] || die "no kubelet in $REAL_BIN (scripts/build-real-bins failed?)"
  port_busy "$REGISTRY_PORT" && die "port 127.0.0.1:$REGISTRY_PORT (registry) is in use (set CLUSTER_REGISTRY_PORT)"
  port_busy "$KUBELET_HEALTHZ_PORT" && die "port $KUBELET_HEALTHZ_PORT (kubelet healthz) is in use; is another real node running?"
  port_busy 10250 && die "port 10250 (kubelet) is in use; is another real node running?"
  ip link show "$REAL_BRIDGE" >/dev/null 2>&1 && die "bridge $REAL_BRIDGE exists already (another real node? set CLUSTER_REAL_BRIDGE)"
  iptables -t nat -S "$REAL_CHAIN" >/dev/null 2>&1 && die "iptables nat chain $REAL_CHAIN exists already (set CLUSTER_REAL_CHAIN)"
  return 0
}

undo_note() { echo "$2" >>"$NODE_DIR/undo/$1"; }

real_node_network_up() {
  # The bridge plugin (isGateway) turns on IP forwarding; put it back at stop.
  undo_note sysctls "net.ipv4.ip_forward=$(sysctl -n net.ipv4.ip_forward)"
  ip link add "$REAL_BRIDGE" type bridge
  undo_note bridge "$REAL_BRIDGE"
  ip addr add "$REAL_NODE_IP/${REAL_SUBNET#*/}" dev "$REAL_BRIDGE"
  ip link set "$REAL_BRIDGE" up
  # Per-interface, so it disappears with the bridge; needed for the DNAT to 127.0.0.1 below.
  sysctl -qw "net.ipv4.conf.$REAL_BRIDGE.route_localnet=1"
  iptables -t nat -N "$REAL_CHAIN"
  undo_note iptables "$REAL_CHAIN"
  iptables -t nat -A "$REAL_CHAIN" -d "$SERVICE_VIP/32" -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$API_PORT"
  # Pods (from the bridge) and host-network pods (local output).
  iptables -t nat -A PREROUTING -i "$REAL_BRIDGE" -j "$REAL_CHAIN" -m comment --comment "chaos-conductor $RUN"
  iptables -t nat -A OUTPUT -d "$SERVICE_VIP/32" -j "$REAL_CHAIN" -m comment --comment "chaos-conductor $RUN"

  mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  cat >"$NODE_DIR/cni/net.d/10-realnode.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "realnode",
  "plugins": [
    {
      "type": "bridge", "bridge": "$REAL_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$REAL_SUBNET", "gateway": "$REAL_NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}

real_node_cgroups_up() {
  local r
  for r in $(cgroup_roots); do
    if [ ! -d "$r/$REAL_CGROUP" ]; then
      mkdir "$r/$REAL_CGROUP"
      undo_note cgroups "$r/$REAL_CGROUP"
    fi
  done
  # cpuset: a child starts with empty cpus/mems and refuses tasks until they are copied down.
  if [ -d "/sys/fs/cgroup/cpuset/$REAL_CGROUP" ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$REAL_CGROUP/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$REAL_CGROUP/cpuset.mems"
  fi
}

real_node_registry_up() {
  mkdir -p "$NODE_DIR/registry"
  cat >"$NODE_DIR/registry.yaml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $NODE_DIR/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
  start registry "$REAL_BIN/registry" serve "$NODE_DIR/registry.yaml"
  wait_for "registry (127.0.0.1:$REGISTRY_PORT)" "registry" registry_ready
}

real_node_containerd_up() {
  local c=$NODE_DIR/containerd h
  mkdir -p "$c/root" "$c/state" "$c/certs.d" "$c/opt"
  # Mirror entries: <host>/hosts.toml sends pulls of <host>/<path> to the local registry's <path>.
  for h in "${MIRRORED_HOSTS[@]}"; do
    mkdir -p "$c/certs.d/$h"
    cat >"$c/certs.d/$h/hosts.toml" <<EOF
server = "https://$h"
[host."http://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
  done
  mkdir -p "$c/certs.d/127.0.0.1:$REGISTRY_PORT"
  cat >"$c/certs.d/127.0.0.1:$REGISTRY_PORT/hosts.toml" <<EOF
server = "http://127.0.0.1:$REGISTRY_PORT"
[host."http://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve", "push"]
EOF
  # restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so the sandbox's -998 would fail
  # every runc create (docs/real-node.md). The pause image is ours, served by the local registry.
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
EOF
  start containerd /usr/bin/containerd --config "$c/config.toml"
  wait_for containerd "containerd" containerd_ready
}

real_node_kubelet_up() {
  local k=$NODE_DIR/kubelet s
  mkdir -p "$k" "$NODE_DIR/pod-logs"
  for s in "${KUBELET_SYSCTLS[@]}"; do undo_note sysctls "$s=$(sysctl -n "$s")"; done
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $REAL_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$NODE_DIR/containerd/containerd.sock
podLogsDir: $NODE_DIR/pod-logs
cgroupDriver: cgroupfs
cgroupRoot: /$REAL_CGROUP
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
# root here lacks CAP_SYS_RESOURCE: kubelet's own -999 fails, and so would the sandboxes' -998.
oomScoreAdj: 0
# A shared host: no KUBE-* iptables chains, no image GC, no evictions on a busy disk.
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
serializeImagePulls: false
resolvConf: /etc/resolv.conf
maxPods: 60
EOF
  start kubelet "$REAL_BIN/kubelet" --config="$NODE_DIR/kubelet.yaml" --kubeconfig="$RUN/kubeconfig" \
    --root-dir="$k" --cert-dir="$k/pki" --hostname-override="$REAL_NODE" --node-ip="$REAL_NODE_IP" \
    --node-labels="type=real,chaos-conductor.io/real-node=true" --v=1
  wait_for "kubelet healthz" "kubelet containerd" kubelet_ready
  real_node_restore_sysctls
  wait_for "node $REAL_NODE Ready (kubelet + containerd)" "kubelet containerd" real_node_ready
  # kubelet writes the sysctls once more when its container manager settles; put them back again.
  real_node_restore_sysctls
}

real_node_restore_sysctls() {
  local line
  [ -f "$NODE_DIR/undo/sysctls" ] || return 0
  while IFS= read -r line; do sysctl -qw "$line" 2>/dev/null || true; done <"$NODE_DIR/undo/sysctls"
}

# The infrastructure images every pod of the node needs: pause (the sandbox) and busybox (apps).
real_node_images_up() {
  # stdout stays for `eval "$(scripts/cluster up)"`: the image lines go to stderr.
  "$REPO/scripts/build-images" --registry "127.0.0.1:$REGISTRY_PORT" pause busybox >&2
}

# Host folders containerd, the CNI library and kubelet use whatever their configured roots: which
# of them existed before we started, and which network namespaces were there, so that `down`
# removes only what this node made.
# (/var/lib/kubelet/device-plugins is fixed in kubelet's device manager; /run/mount is mount(8)'s.)
HOST_DIRS=(/run/containerd /run/netns /run/mount /var/lib/cni /var/lib/kubelet /var/log/containers)
real_node_host_snapshot() {
  local d
  for d in "${HOST_DIRS[@]}"; do [ -e "$d" ] || undo_note created-dirs "$d"; done
  ls /run/netns 2>/dev/null >"$NODE_DIR/undo/netns-before" || true
}

real_node_host_cleanup() {
  local d f
  # Network namespaces the CRI made for our sandboxes (bind mounts in /run/netns).
  if [ -f "$NODE_DIR/undo/netns-before" ]; then
    for f in /run/netns/cni-*; do
      [ -e "$f" ] || continue
      f=${f##*/}
      grep -qx "$f" "$NODE_DIR/undo/netns-before" && continue
      umount "/run/netns/$f" 2>/dev/null || true
      rm -f "/run/netns/$f"
    done
    rm -f "$NODE_DIR/undo/netns-before"
  fi
  # kubelet's /var/log/containers links into our pod-logs folder; libcni's result cache.
  for f in /var/log/containers/*; do
    [ -L "$f" ] && case $(readlink "$f") in "$NODE_DIR"/*) rm -f "$f" ;; esac
  done
  rm -f /var/lib/cni/results/realnode-* 2>/dev/null || true
  if [ -f "$NODE_DIR/undo/created-dirs" ]; then
    while IFS= read -r d; do
      # Created by this node (nothing else runs containers here): all that is inside is ours.
      [ -e "$d" ] || continue
      rm -rf "$d" 2>/dev/null || log "warning: could not remove $d: $(find "$d" -mindepth 1 -maxdepth 1 | head -5 | tr '\n' ' ')"
    done <"$NODE_DIR/undo/created-dirs"
    rm -f "$NODE_DIR/undo/created-dirs"
  fi
}

real_node_up() {
  mkdir -p "$NODE_DIR/undo"
  real_node_host_snapshot
  real_node_network_up
  real_node_cgroups_up
  real_node_registry_up
  real_node_images_up
  real_node_containerd_up
  real_node_kubelet_up
  # New pods go to the real node; kwok's fake node stays (scale tests) but takes no new pods.
  kc cordon "$NODE" >/dev/null
  echo "127.0.0.1:$REGISTRY_PORT" >"$RUN/registry"
  log "real node $REAL_NODE Ready (t+$((SECONDS - START))s); registry 127.0.0.1:$REGISTRY_PORT"
}

# Undo everything real_node_up recorded; safe to run twice and after a half-failed start.
real_node_down() {
  [ -d "$NODE_DIR" ] || return 0
  local n pid deadline line
  # 1. The node's pods, through the API, while kubelet still runs (it kills containers and unmounts).
  if pid_of kubelet >/dev/null && api_ready; then
    kc delete pods -A --field-selector "spec.nodeName=$REAL_NODE" --wait=false >/dev/null 2>&1 || true
    deadline=$((SECONDS + 40))
    while [ -n "$(kc get pods -A --field-selector "spec.nodeName=$REAL_NODE" -o name 2>/dev/null)" ] &&
      [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
    kc delete pods -A --field-selector "spec.nodeName=$REAL_NODE" --grace-period=0 --force >/dev/null 2>&1 || true
    kc delete node "$REAL_NODE" --wait=false >/dev/null 2>&1 || true
  fi
  # 2. kubelet, then what is left of the sandboxes, then containerd and the registry (by PID).
  stop_component kubelet
  if pid_of containerd >/dev/null; then
    for pid in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$pid" >/dev/null 2>&1 || true; done
  fi
  stop_component containerd
  # The shims (containerd-shim-runc-v2) outlive containerd by design; ours carry our state folder
  # in their command line (-address), so only they are matched.
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $NODE_DIR/containerd/containerd.sock" || true); do
    kill -9 "$pid" 2>/dev/null || true
  done
  stop_component registry
  # 3. Mounts below the state folder (kubelet bind-mounts its root dir; containerd mounts rootfs,
  #    shm and pod volumes), deepest first.
  while IFS= read -r line; do
    umount -l "$line" 2>/dev/null || true
  done < <(awk -v p="$NODE_DIR/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r)
  # 4. Pod cgroups, deepest first (processes are gone by now).
  if [ -f "$NODE_DIR/undo/cgroups" ]; then
    while IFS= read -r line; do
      if [ -d "$line" ]; then find "$line" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
      [ -d "$line" ] && log "warning: cgroup $line still there (busy?)"
    done <"$NODE_DIR/undo/cgroups"
    rm -f "$NODE_DIR/undo/cgroups"
  fi
  # 5. Network: the nat chain and its jumps, the bridge (and its route_localnet with it).
  if [ -f "$NODE_DIR/undo/iptables" ]; then
    while iptables -t nat -D PREROUTING -i "$REAL_BRIDGE" -j "$REAL_CHAIN" -m comment --comment "chaos-conductor $RUN" 2>/dev/null; do :; done
    while iptables -t nat -D OUTPUT -d "$SERVICE_VIP/32" -j "$REAL_CHAIN" -m comment --comment "chaos-conductor $RUN" 2>/dev/null; do :; done
    iptables -t nat -F "$REAL_CHAIN" 2>/dev/null || true
    iptables -t nat -X "$REAL_CHAIN" 2>/dev/null || true
    rm -f "$NODE_DIR/undo/iptables"
  fi
  if [ -f "$NODE_DIR/undo/bridge" ]; then
    # Veths of pods that never got a CNI DEL go with their network namespaces; the bridge goes here.
    ip link del "$REAL_BRIDGE" 2>/dev/null || true
    rm -f "$NODE_DIR/undo/bridge"
  fi
  # 6. Sysctls, and the empty folders containerd 1.6 makes in /run/containerd whatever its state dir.
  real_node_restore_sysctls
  rm -f "$NODE_DIR/undo/sysctls"
  real_node_host_cleanup
  rm -f "$RUN/real-node" "$RUN/registry"
  log "real node stopped and cleaned up"
}

real_node_status() {
  local n pid rc=0
  for n in "${REAL_COMPONENTS[@]}"; do
    if pid=$(pid_of "$n"); then
      printf '%-24s pid %-8s rss %s MiB\n' "$n" "$pid" "$(($(awk '/^VmRSS/{print $2}' "/proc/$pid/status") / 1024))"
    else
      printf '%-24s DOWN\n' "$n"; rc=1
    fi
  done
  return "$rc"
}
