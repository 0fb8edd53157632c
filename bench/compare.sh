#!/usr/bin/env bash
# Side-by-side sync benchmark: the peer systems in shared/peers (PouchDB, automerge-repo) and
# Outpost, measured in the same run on this machine, summarised in one table with ratios.
# See bench/README.md.
#
# usage: bench/compare.sh [--n 10000] [--reps 3] [--peers pouchdb,automerge]
#                         [--out target/bench-compare]
#                         [--skip-peers FILE.jsonl] [--skip-outpost FILE.jsonl]
#
# env:   OUTPOST_PEERS_DIR        peers to copy (default: <repo>/../shared/peers)
#        OUTPOST_BENCH_TIMEOUT_S  bound for each cargo step (default 5400: it includes compiling)
#
# stdout gets only the table (also in $OUT/compare.md, JSON in $OUT/compare.json);
# progress goes to stderr, full logs to $OUT/logs/.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)

N=10000
REPS=3
PEERS=pouchdb,automerge
OUT=$REPO_ROOT/target/bench-compare
SKIP_PEERS=
SKIP_OUTPOST=
PEERS_SRC=${OUTPOST_PEERS_DIR:-$REPO_ROOT/../shared/peers}
# The peers' README runs every configuration under `timeout 3000` (run_all.sh); keep that bound.
PEER_TIMEOUT_S=3000
OUTPOST_TIMEOUT_S=${OUTPOST_BENCH_TIMEOUT_S:-5400}
NPM_TIMEOUT_S=1800
# Fixed ports of the peers' harness (common/bench.mjs): server and byte-counter control port.
PEER_PORTS=(47001 47002)

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '6,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

# ---- arguments ---------------------------------------------------------------------------
while (($#)); do
  case $1 in
    -h | --help) usage 0 ;;
    --n | --reps | --peers | --out | --skip-peers | --skip-outpost)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --n) N=$2 ;;
        --reps) REPS=$2 ;;
        --peers) PEERS=$2 ;;
        --out) OUT=$2 ;;
        --skip-peers) SKIP_PEERS=$2 ;;
        --skip-outpost) SKIP_OUTPOST=$2 ;;
      esac
      shift 2 ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done

[[ $N =~ ^[1-9][0-9]*$ ]] || die "--n must be a positive integer, got '$N'"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer, got '$REPS'"
IFS=, read -r -a PEER_LIST <<<"$PEERS"
((${#PEER_LIST[@]})) || [[ -n $SKIP_PEERS ]] || die "--peers is empty"
for p in "${PEER_LIST[@]}"; do
  case $p in pouchdb | automerge) ;; *) die "unknown peer '$p' (known: pouchdb, automerge)" ;; esac
done

# Absolute paths: the peers' driver resolves --out against its own folder, and we cd around.
OUT=$(realpath -m -- "$OUT")
if [[ -n $SKIP_PEERS ]]; then
  [[ -f $SKIP_PEERS ]] || die "--skip-peers: no such file: $SKIP_PEERS"
  SKIP_PEERS=$(realpath -- "$SKIP_PEERS")
fi
if [[ -n $SKIP_OUTPOST ]]; then
  [[ -f $SKIP_OUTPOST ]] || die "--skip-outpost: no such file: $SKIP_OUTPOST"
  SKIP_OUTPOST=$(realpath -- "$SKIP_OUTPOST")
fi

# ---- tools ---------------------------------------------------------------------------------
command -v node >/dev/null || die "node not found (the peers were pinned on node 20; compare.mjs needs node too)"
if [[ -z $SKIP_PEERS ]]; then
  command -v npm >/dev/null || die "npm not found (needed to install the peers' packages)"
  command -v timeout >/dev/null || die "timeout (coreutils) not found"
  # The peers' driver runs every client and server under /usr/bin/time -v for peak RSS.
  if [[ ! -x /usr/bin/time ]]; then
    if ((EUID == 0)); then
      log "/usr/bin/time missing: installing the Debian package 'time'"
      timeout 900 apt-get update
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y time
    else
      die "/usr/bin/time is missing; install it as root: apt-get update && apt-get install -y time"
    fi
  fi
  [[ -d $PEERS_SRC/common ]] || die "no peers at $PEERS_SRC (set OUTPOST_PEERS_DIR)"
  PEERS_SRC=$(realpath -- "$PEERS_SRC")
  # The shared folder is read-only in CI and shared with others: never write into it.
  case "$OUT/" in "$PEERS_SRC"/*) die "--out $OUT is inside the shared peers folder $PEERS_SRC" ;; esac
fi
if [[ -z $SKIP_OUTPOST ]]; then
  command -v cargo >/dev/null || die "cargo not found (or use --skip-outpost FILE)"
fi

mkdir -p "$OUT/logs"
# One compare.sh per output folder at a time (they would share the peers copy and result files).
if command -v flock >/dev/null; then
  exec 9>"$OUT/.lock"
  flock -n 9 || die "another compare.sh is running with --out $OUT"
fi

# ---- helpers -------------------------------------------------------------------------------
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# The peers' harness uses fixed ports; a leftover server there would be measured instead of ours.
ensure_peer_ports_free() {
  local port i
  for port in "${PEER_PORTS[@]}"; do
    # bounded wait: a server the driver just asked to quit may need a moment to exit
    for ((i = 0; i < 30; i++)); do port_busy "$port" || continue 2; sleep 2; done
    if command -v ss >/dev/null; then ss -ltnp "sport = :$port" >&2 || true; fi
    die "127.0.0.1:$port is still in use (another benchmark, or a leftover peer server from an interrupted run): stop it first"
  done
}

# Run a command under `timeout`, output to LOG (and shortened to stderr as progress when "show").
# timeout runs in its own process group, so a Ctrl-C at the terminal does not reach it: the
# command runs in the background and the INT/TERM trap below forwards the signal to timeout,
# which passes it on to the command's process group.
CHILD=
run_bounded() { # run_bounded LOG SECONDS show|quiet CMD...
  local logf=$1 secs=$2 mode=$3 rc=0
  shift 3
  if [[ $mode == show ]]; then
    timeout -k 60 "$secs" "$@" > >(tee "$logf" | cut -c1-200 >&2) 2>&1 </dev/null &
  else
    timeout -k 60 "$secs" "$@" >"$logf" 2>&1 </dev/null &
  fi
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=
  return "$rc"
}
on_signal() {
  if [[ -n $CHILD ]]; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  log "interrupted. Peer clients/servers run in their own process groups and stop on their own timers;"
  log "until then 127.0.0.1:${PEER_PORTS[0]} may stay in use (the next run checks for that)."
  exit 130
}
trap on_signal INT TERM

# Keep an earlier result file instead of appending to it: the driver and the Outpost bench append.
fresh_file() {
  if [[ -s $1 ]]; then mv -f -- "$1" "$1.prev"; fi
  : >"$1"
}

# Make everything in the copy writable (the shared source is read-only, and copies keep that),
# so npm can install into it and the driver can create work/ and rewrite files on the next copy.
make_writable() {
  [[ -d $1 ]] || return 0
  find "$1" -name node_modules -prune -o ! -perm -u+w -exec chmod u+w {} +
}

# Copy the peers, leaving out installed packages (node_modules), the driver's scratch data (work/)
# and the shared results (results/).
copy_peers() {
  local dst=$OUT/peers
  log "copying $PEERS_SRC -> $dst (without node_modules, work, results)"
  mkdir -p "$dst"
  make_writable "$dst"
  if command -v rsync >/dev/null; then
    # --delete drops files that were removed from the source; excluded paths are kept.
    rsync -a --delete --exclude=node_modules --exclude=/work --exclude=/results -- "$PEERS_SRC/" "$dst/"
  else
    # cp has no exclude option: walk the tree with find, pruning the excluded folders.
    local prune=(\( -name node_modules -o -path ./work -o -path ./results \) -prune -o)
    (cd "$PEERS_SRC" && find . "${prune[@]}" -type d -print0) |
      while IFS= read -r -d '' d; do mkdir -p -- "$dst/$d"; done
    (cd "$PEERS_SRC" && find . "${prune[@]}" \( -type f -o -type l \) -print0) |
      while IFS= read -r -d '' f; do cp -Pf --preserve=timestamps -- "$PEERS_SRC/$f" "$dst/$f"; done
  fi
  make_writable "$dst"
}

# npm install (not npm ci: the lock lacks the optional @cbor-extract/* packages that this
# registry does not serve, so ci fails; install keeps the locked versions). Only when
# node_modules is missing, so repeated runs do not touch the registry.
install_peer() {
  local dir=$OUT/peers/$1 check=$2
  if [[ -d $dir/node_modules ]]; then
    log "$1: node_modules present, not reinstalling (delete $dir/node_modules to force)"
  else
    log "$1: npm install (log: $OUT/logs/npm-$1.log)"
    cd -- "$dir"
    if ! run_bounded "$OUT/logs/npm-$1.log" "$NPM_TIMEOUT_S" quiet npm install --no-audit --no-fund; then
      rm -rf -- "$dir/node_modules" # a half-installed tree would be taken as installed next time
      tail -n 20 "$OUT/logs/npm-$1.log" >&2 || true
      die "npm install failed in $dir (full log: $OUT/logs/npm-$1.log)"
    fi
  fi
  [[ -e $dir/node_modules/$check ]] || die "$dir/node_modules has no $check: delete $dir/node_modules and rerun"
}

FAILURES=()
TIMINGS=()

# Run one peer configuration through the peers' own driver, from the copy.
run_peer() {
  local peer=$1 system layout rc=0 start
  case $peer in
    pouchdb) system=pouchdb layout=perdoc ;;
    automerge) system=automerge layout=onedoc ;;
  esac
  ensure_peer_ports_free
  log "peer $peer: node common/bench.mjs --system $system --layout $layout --n $N --reps $REPS (log: $OUT/logs/peer-$peer.log)"
  start=$SECONDS
  # The driver prints one JSON line per run; they are shown shortened as progress.
  cd -- "$OUT/peers"
  run_bounded "$OUT/logs/peer-$peer.log" "$PEER_TIMEOUT_S" show \
    node common/bench.mjs --system "$system" --layout "$layout" --n "$N" --reps "$REPS" --out "$PEERS_JSONL" || rc=$?
  TIMINGS+=("peer $peer (N=$N, reps=$REPS): $((SECONDS - start)) s")
  if ((rc != 0)); then
    # The driver records failed runs itself (exit 0); non-zero means it crashed or timed out.
    local why="driver exited with $rc"
    ((rc != 124)) || why+=" (hit the ${PEER_TIMEOUT_S} s bound)"
    FAILURES+=("peer $peer: $why (log: $OUT/logs/peer-$peer.log)")
    log "peer $peer: driver exited with $rc; its clients/servers run in their own process groups and stop on their own timers"
  fi
}

# ---- Outpost: compile first, so a build error shows before the long peer runs ----------------
OUTPOST_BENCH=(cargo bench -p outpost-daemon --bench sync --locked)
if [[ -z $SKIP_OUTPOST ]]; then
  log "outpost: compiling the benchmark (log: $OUT/logs/outpost-build.log)"
  start=$SECONDS
  cd -- "$REPO_ROOT"
  run_bounded "$OUT/logs/outpost-build.log" "$OUTPOST_TIMEOUT_S" quiet "${OUTPOST_BENCH[@]}" --no-run ||
    { tail -n 30 "$OUT/logs/outpost-build.log" >&2; die "building the Outpost benchmark failed"; }
  TIMINGS+=("outpost build: $((SECONDS - start)) s")
fi

# ---- peers -------------------------------------------------------------------------------
if [[ -n $SKIP_PEERS ]]; then
  PEERS_JSONL=$SKIP_PEERS
  log "peers: reusing $PEERS_JSONL"
else
  PEERS_JSONL=$OUT/peers.jsonl
  ensure_peer_ports_free # fail before copying, installing and emptying the previous results
  copy_peers
  for p in "${PEER_LIST[@]}"; do
    case $p in
      pouchdb) install_peer pouchdb pouchdb-server/bin/pouchdb-server ;;
      automerge) install_peer automerge-js @automerge/automerge-repo-network-websocket ;;
    esac
  done
  fresh_file "$PEERS_JSONL"
  # Sequentially, never in parallel: 2 cores, and the peers share fixed ports.
  for p in "${PEER_LIST[@]}"; do run_peer "$p"; done
fi

# ---- Outpost run ---------------------------------------------------------------------------
if [[ -n $SKIP_OUTPOST ]]; then
  OUTPOST_JSONL=$SKIP_OUTPOST
  log "outpost: reusing $OUTPOST_JSONL"
else
  OUTPOST_JSONL=$OUT/outpost.jsonl
  fresh_file "$OUTPOST_JSONL"
  log "outpost: ${OUTPOST_BENCH[*]} -- --n $N --reps $REPS --scenarios s1,s2,s3 (log: $OUT/logs/outpost.log)"
  start=$SECONDS
  rc=0
  cd -- "$REPO_ROOT"
  run_bounded "$OUT/logs/outpost.log" "$OUTPOST_TIMEOUT_S" show \
    "${OUTPOST_BENCH[@]}" -- --n "$N" --reps "$REPS" --scenarios s1,s2,s3 --jsonl "$OUTPOST_JSONL" || rc=$?
  TIMINGS+=("outpost (N=$N, reps=$REPS): $((SECONDS - start)) s")
  ((rc == 0)) || FAILURES+=("outpost: cargo bench exited with $rc (log: $OUT/logs/outpost.log)")
fi

# ---- table -----------------------------------------------------------------------------------
# Still print what was measured when a step failed; the exit status reports the failure.
node "$SCRIPT_DIR/compare.mjs" --json --n "$N" "$PEERS_JSONL" "$OUTPOST_JSONL" >"$OUT/compare.json"
node "$SCRIPT_DIR/compare.mjs" --n "$N" "$PEERS_JSONL" "$OUTPOST_JSONL" | tee "$OUT/compare.md"

for t in "${TIMINGS[@]}"; do log "time: $t"; done
log "wrote $OUT/compare.md and $OUT/compare.json"
if ((${#FAILURES[@]})); then
  for f in "${FAILURES[@]}"; do log "FAILED: $f"; done
  exit 1
fi
