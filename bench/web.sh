#!/usr/bin/env bash
# Answer times of the staff web app's pages with a large store: fills a
# laptop store with N records (visits over the last year, ending today, so
# "today and recent" has thousands to choose from, plus courses with
# sessions), starts `outpostd` through `outpost ui --no-open`, signs in
# with the launch link and times each page over several requests on one
# kept-alive connection (curl's time_total: request sent to last byte).
# Prints median and p95 per page, in milliseconds.
#
#   bench/web.sh                    # 100,000 records, 30 requests a page
#   bench/web.sh --n 10000 --reps 10
#
# See bench/README.md. Env: CARGO_TARGET_DIR is honoured; PROFILE=debug
# times the debug build (slower; release is the default). REUSE=1 keeps
# the store of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

n=100000
reps=30
out=target/bench-web
while [ $# -gt 0 ]; do
  case $1 in
    --n) n=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $out in /*) ;; *) out=$root/$out ;; esac
command -v curl >/dev/null || { echo "bench/web.sh needs curl: apt-get install -y curl" >&2; exit 1; }

profile=${PROFILE:-release}
echo "building $profile binaries..." >&2
if [ "$profile" = release ]; then
  cargo build --release --locked -q -p outpost-cli -p outpost-daemon
else
  cargo build --locked -q -p outpost-cli -p outpost-daemon
fi
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/$profile
unset OUTPOST_DATA_DIR OUTPOST_HUB_URL OUTPOST_ADMIN_TOKEN OUTPOST_CONFIG_DIR OUTPOST_CA_FILE

dir=$out/laptop
outpost=("$bin/outpost" --data-dir "$dir")
# REUSE=1 keeps a store an earlier run filled (its size is not checked).
reuse=
if [ -n "${REUSE:-}" ] && [ -e "$dir/outpost.db" ]; then
  reuse=1
else
  rm -rf "$out"
fi
mkdir -p "$out"

daemon_pid=
stop_daemon() {
  if [ -n "$daemon_pid" ]; then
    kill "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    daemon_pid=
  fi
}
trap stop_daemon EXIT

if [ -z "$reuse" ]; then
echo "generating and importing $n records (untimed)..." >&2
python3 - "$n" >"$out/records.jsonl" <<'PY'
import datetime, json, random, sys, uuid
n = int(sys.argv[1])
rng = random.Random(42)
today = datetime.date.today()
services = ["Försäkringskassan", "Skatteverket", "BankID", "1177", "CSN", "Kivra", "Swish"]
notes = ["behövde hjälp med inloggning", "frågade om en betalning", "ville förstå ett brev",
         "hade problem med mobilt BankID", "fick stöd med en ansökan"]
courses = max(1, n // 200)
uid = lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))
for i in range(n - courses):
    day = today - datetime.timedelta(days=i % 365)
    print(json.dumps({
        "id": uid(), "org": "bench", "site": "Stadsbiblioteket", "staff": "AB",
        "kind": "visit", "date": day.isoformat(), "time": f"{9 + i % 8:02d}:{i % 60:02d}",
        "minutes": 5 + i % 60, "channel": "drop_in",
        "services": [services[i % len(services)]], "category": "e_service",
        "outcome": ["solved", "partly", "referred", "not_solved"][i % 4],
        "age_band": "65_79", "language": "sv",
        "note": f"Besökaren {notes[i % len(notes)]} ({i})",
    }, ensure_ascii=False))
for i in range(courses):
    start = today - datetime.timedelta(days=(i * 7) % 365)
    print(json.dumps({
        "id": uid(), "org": "bench", "site": "Stadsbiblioteket", "staff": "AB",
        "kind": "course", "title": f"Nybörjarkurs internet {i}", "partner": "ABF",
        "sessions": [{"id": uid(), "date": (start + datetime.timedelta(days=7 * k)).isoformat(),
                      "time": "13:00", "minutes": 90, "participants": 4 + k}
                     for k in range(4)],
    }, ensure_ascii=False))
PY
"${outpost[@]}" init --org bench --site Stadsbiblioteket --staff AB >/dev/null
"${outpost[@]}" import --format jsonl "$out/records.jsonl" >/dev/null
fi

echo "starting the daemon and signing in..." >&2
link=$("${outpost[@]}" ui --no-open)
daemon_pid=$(tr -dc 0-9 <"$dir/outpostd.lock")
base=${link%%launch\?*}
cookie=$(curl -s -o /dev/null -D - "$link" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n1)
[ -n "$cookie" ] || { echo "the launch link did not give a session" >&2; exit 1; }
visit=$("${outpost[@]}" --json list --kind visit --from "$(date +%F)" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
course=$("${outpost[@]}" --json list --kind course | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')

pages=(
  "today and recent|"
  "new visit form|visits/new"
  "edit a visit|visits/$visit/edit"
  "delete confirmation|records/$visit/delete"
  "courses|courses"
  "a course|courses/$course"
  "conflicts|conflicts"
  "settings|settings"
)
table=$out/web.tsv
printf 'page\tpath\tmedian_ms\tp95_ms\tmax_ms\tbytes\n' >"$table"
for entry in "${pages[@]}"; do
  label=${entry%%|*}
  path=${entry#*|}
  urls=()
  for _ in $(seq "$reps"); do urls+=(-o /dev/null "$base$path"); done
  # One warm-up request, then the timed ones on one connection.
  curl -s -o /dev/null -H "Cookie: $cookie" "$base$path"
  curl -s -H "Cookie: $cookie" -w '%{http_code} %{time_total} %{size_download}\n' "${urls[@]}" >"$out/times.txt"
  python3 - "$label" "$path" "$out/times.txt" >>"$table" <<'PY'
import statistics, sys
label, path, f = sys.argv[1:4]
rows = [l.split() for l in open(f) if l.strip()]
bad = [r for r in rows if r[0] != "200"]
if bad:
    sys.exit(f"/{path} answered {bad[0][0]}")
ms = sorted(float(r[1]) * 1000 for r in rows)
p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
print(f"{label}\t/{path}\t{statistics.median(ms):.1f}\t{p95:.1f}\t{ms[-1]:.1f}\t{rows[-1][2]}")
PY
done
stop_daemon

echo >&2
python3 - "$table" "$n" "$reps" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print(f"{int(sys.argv[2]):,} records, {sys.argv[3]} requests a page")
print("| page | path | median ms | p95 ms | max ms | bytes |")
print("|---|---|---|---|---|---|")
for r in rows:
    path = r["path"].split("/")
    path = "/".join("ID" if len(p) == 36 else p for p in path)
    print(f"| {r['page']} | {path} | {r['median_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['bytes']} |")
PY
echo "raw rows: $table" >&2
