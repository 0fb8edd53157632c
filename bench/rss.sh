#!/usr/bin/env bash
# Peak resident memory (RSS) of the streaming commands, laptop and hub, at
# several store sizes: `outpost export` (csv, xlsx) and `outpost stats` on
# a laptop, and `outpost admin export` (csv, xlsx) and `admin stats`
# against a hub (the hub process's peak and the admin client's).
#
#   bench/rss.sh                       # 10,000 and 100,000 records
#   bench/rss.sh --sizes 1000          # quick
#   bench/rss.sh --sizes "10000 100000" --out /tmp/rss
#
# See bench/README.md. Env: CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sizes="10000 100000"
out=target/bench-rss
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $out in /*) ;; *) out=$root/$out ;; esac

if [ ! -x /usr/bin/time ]; then
  echo "bench/rss.sh needs GNU time (/usr/bin/time): apt-get install -y time" >&2
  exit 1
fi

echo "building release binaries..." >&2
cargo build --release --locked -q -p outpost-cli -p outpost-daemon
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release
unset OUTPOST_DATA_DIR OUTPOST_HUB_URL OUTPOST_ADMIN_TOKEN OUTPOST_CONFIG_DIR OUTPOST_CA_FILE

rm -rf "$out"
mkdir -p "$out"
table=$out/rss.tsv
printf 'records\tside\tcommand\tpeak_rss_kib\twall_s\n' >"$table"

hub_pid=
stop_hub() {
  if [ -n "$hub_pid" ]; then
    kill "$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=
  fi
}
trap stop_hub EXIT

# Starts `outpostd hub` on a free loopback port; sets hub_pid and hub_url.
start_hub() {
  local dir=$1 log=$1.log
  "$bin/outpostd" hub --data-dir "$dir" --listen 127.0.0.1:0 2>"$log" &
  hub_pid=$!
  hub_url=
  for _ in $(seq 300); do
    hub_url=$(sed -n 's/^hub listening on //p' "$log" | head -n1)
    [ -n "$hub_url" ] && return 0
    kill -0 "$hub_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the hub did not start; see $log" >&2
  exit 1
}

# Peak RSS of a process that is still running (VmHWM, KiB).
vmhwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# Runs a command under GNU time; appends its peak RSS to the table.
measure() {
  local n=$1 side=$2 label=$3
  shift 3
  local t=$out/time.txt
  /usr/bin/time -f '%M %e' -o "$t" "$@" >/dev/null
  read -r kib secs <"$t"
  printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$side" "$label" "$kib" "$secs" >>"$table"
  printf '  %-8s %-7s %-34s %8s KiB %6ss\n' "$n" "$side" "$label" "$kib" "$secs" >&2
}

for n in $sizes; do
  dir=$out/n$n
  mkdir -p "$dir"
  echo "n=$n: generating, importing and syncing $n visits (untimed)..." >&2
  python3 - "$n" >"$dir/visits.jsonl" <<'PY'
import json, random, sys, uuid
n = int(sys.argv[1])
rng = random.Random(42)
sites = ["Stadsbiblioteket", "Tensta bibliotek", "Rinkeby bibliotek", "Husby bibliotek"]
services = ["Försäkringskassan", "Skatteverket", "BankID", "1177", "CSN", "Kivra", "Swish"]
notes = ["behövde hjälp med inloggning", "frågade om en betalning", "ville förstå ett brev",
         "hade problem med mobilt BankID", "fick stöd med en ansökan"]
for i in range(n):
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    print(json.dumps({
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "org": "bench", "site": sites[i % len(sites)], "staff": "AB",
        "kind": "visit", "date": f"2025-{month:02d}-{day:02d}", "time": "10:15",
        "minutes": 5 + i % 60, "channel": "drop_in",
        "services": [services[i % len(services)]], "category": "e_service",
        "outcome": ["solved", "partly", "referred", "not_solved"][i % 4],
        "age_band": "65_79", "language": "sv",
        "note": f"Besökaren {notes[i % len(notes)]} ({i})",
    }, ensure_ascii=False))
PY
  token=$("$bin/outpostd" hub init --data-dir "$dir/hub" 2>/dev/null)
  start_hub "$dir/hub"
  admin=("$bin/outpost" --data-dir "$dir/admin" admin --hub "$hub_url" --token "$token")
  "${admin[@]}" org add bench "Bench kommun" >/dev/null
  "$bin/outpost" --data-dir "$dir/laptop" init --org bench --site Stadsbiblioteket --staff AB >/dev/null
  "$bin/outpost" --data-dir "$dir/laptop" enroll "$hub_url" "$("${admin[@]}" invite --org bench)" >/dev/null
  "$bin/outpost" --data-dir "$dir/laptop" import "$dir/visits.jsonl" >/dev/null
  "$bin/outpost" --data-dir "$dir/laptop" sync >/dev/null
  stop_hub

  laptop=("$bin/outpost" --data-dir "$dir/laptop")
  measure "$n" laptop "export --format csv" "${laptop[@]}" export --format csv -o "$dir/laptop.csv"
  measure "$n" laptop "export --format xlsx" "${laptop[@]}" export --format xlsx -o "$dir/laptop.xlsx"
  measure "$n" laptop "stats" "${laptop[@]}" stats
  measure "$n" laptop "stats --by site" "${laptop[@]}" stats --by site

  # Each admin command gets a fresh hub, so the hub's VmHWM is that
  # command's peak (plus the hub's start-up, measured alone first).
  start_hub "$dir/hub"
  sleep 0.5
  printf '%s\thub\t(idle after start)\t%s\t\n' "$n" "$(vmhwm "$hub_pid")" >>"$table"
  stop_hub
  for cmd in "export --format csv" "export --format xlsx" "stats" "stats --by site"; do
    start_hub "$dir/hub"
    admin=("$bin/outpost" --data-dir "$dir/admin" admin --hub "$hub_url" --token "$token")
    # shellcheck disable=SC2086 # $cmd is split into its words on purpose
    case $cmd in
      export*) measure "$n" admin "admin $cmd" "${admin[@]}" $cmd -o "$dir/admin.out" ;;
      *) measure "$n" admin "admin $cmd" "${admin[@]}" $cmd ;;
    esac
    printf '%s\thub\tserving admin %s\t%s\t\n' "$n" "$cmd" "$(vmhwm "$hub_pid")" >>"$table"
    stop_hub
  done
  rm -f "$dir/laptop.csv" "$dir/laptop.xlsx" "$dir/admin.out"
done

echo >&2
# The table: one row per command and side, one column per size (MiB).
python3 - "$table" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
sizes = sorted({int(r["records"]) for r in rows})
keys = []
for r in rows:
    k = (r["side"], r["command"])
    if k not in keys:
        keys.append(k)
val = {(r["side"], r["command"], int(r["records"])): int(r["peak_rss_kib"]) for r in rows}
head = ["process", "command"] + [f"{n:,} records (MiB)" for n in sizes]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for side, cmd in keys:
    cells = [f"{val[(side, cmd, n)] / 1024:.1f}" if (side, cmd, n) in val else "" for n in sizes]
    print(f"| {side} | {cmd} | " + " | ".join(cells) + " |")
PY
echo "raw rows: $table" >&2
