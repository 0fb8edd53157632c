#!/usr/bin/env bash
# Outpost end to end on one machine, with embedded defaults: a hub on
# 127.0.0.1 (SQLite), two laptops (two data dirs) that record offline and
# sync, an admin export and statistics of the merged records, and then the
# first laptop's daemon with its staff web app, running until Ctrl-C.
#
# Everything lives in ./demo-data (or $OUTPOST_DEMO_DIR); nothing touches
# your real Outpost data. Every failure is shown, with the step it stopped at.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step="starting"
trap 'status=$?; [ $status -eq 0 ] || printf "\n\033[1;31mdemo.sh stopped while: %s (exit code %s); the messages above say why\033[0m\n" "$step" "$status" >&2' EXIT

step="building outpost and outpostd"
say "Building Outpost (the first build takes several minutes on 2 cores; cargo shows its progress)"
cargo build --locked -p outpost-cli -p outpost-daemon
# The binaries are where cargo put them: its target directory may be moved
# by CARGO_TARGET_DIR or a cargo config, so ask cargo rather than guess.
target_dir=$(cargo metadata --locked --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/debug"
for b in outpost outpostd; do
  [ -x "$bin/$b" ] || { echo "error: cargo built, but $bin/$b is missing" >&2; exit 1; }
done
echo "binaries: $bin/outpost, $bin/outpostd"

demo=${OUTPOST_DEMO_DIR:-./demo-data}
port=${OUTPOST_DEMO_PORT:-7878}
hub_url="http://127.0.0.1:$port"
rm -rf "$demo"
# Everything here (databases, the admin token file) is for this user only.
umask 077
mkdir -p "$demo"
unset OUTPOST_DATA_DIR OUTPOST_HUB_URL OUTPOST_ADMIN_TOKEN

pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'status=$?; stop_all; [ $status -eq 0 ] || [ $status -eq 130 ] || printf "\n\033[1;31mdemo.sh stopped while: %s (exit code %s); the messages above say why\033[0m\n" "$step" "$status" >&2' EXIT
trap 'echo; echo "Stopping the demo (its data stays in $demo)."; exit 130' INT TERM

step="starting the hub on $hub_url"
say "Start a hub on $hub_url"
# The admin token goes to a file only this user can read, and from there
# to `outpost admin --token-file`: never into argv, where `ps` shows it.
"$bin/outpostd" hub init --data-dir "$demo/hub" >"$demo/admin-token"
"$bin/outpostd" hub --data-dir "$demo/hub" --listen "127.0.0.1:$port" 2>"$demo/hub.log" &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "error: the hub stopped; its log:" >&2; cat "$demo/hub.log" >&2; exit 1; }
  sleep 0.1
done
admin() { "$bin/outpost" --data-dir "$demo/admin" admin --hub "$hub_url" --token-file "$demo/admin-token" "$@"; }
admin org add mjolby "Mjölby kommun"

step="enrolling two laptops"
say "Two laptops, enrolled with one-time codes"
for laptop in laptop1 laptop2; do
  site=$([ $laptop = laptop1 ] && echo "Mjölby bibliotek" || echo "Skänninge bibliotek")
  "$bin/outpost" --data-dir "$demo/$laptop" init --org mjolby --site "$site" --staff AB >/dev/null
  "$bin/outpost" --data-dir "$demo/$laptop" enroll "$hub_url" "$(admin invite --org mjolby)"
done
l1() { "$bin/outpost" --data-dir "$demo/laptop1" "$@"; }
l2() { "$bin/outpost" --data-dir "$demo/laptop2" "$@"; }

step="recording visits and a course"
say "Record offline on both laptops (the date defaults to today)"
v=$(l1 visit add --time 10:15 --minutes 30 --channel drop_in --service BankID \
      --category e_service --outcome solved --age-band 65_79 --language sv \
      --barrier "BankID:login:hade glömt säkerhetskoden" --note "Hjälp att aktivera Mobilt BankID")
echo "laptop1 saved visit $v"
l1 visit add --date idag --minutes 45 --channel drop_in --service Försäkringskassan 1177 \
   --category e_service --outcome partly --age-band 80_plus --language ar --assistive interpreter >/dev/null
l2 visit add --minutes 20 --channel outreach --service Skola \
   --category e_service --outcome solved --age-band 25_44 --language so >/dev/null
c=$(l2 course add --title "Nybörjarkurs internet" --partner Medborgarskolan)
l2 course session "$c" --time 13:00 --minutes 90 --participants 8 >/dev/null
echo "A note with a personal identity number is refused:"
l1 visit add --minutes 10 --channel phone --service CSN --category e_service \
   --outcome solved --age-band 45_64 --language sv --note "ring 19121212-1212" || true

step="syncing"
say "Sync both laptops"
l1 sync; l2 sync; l1 sync
l1 list

step="exporting from the hub"
say "Merged records on the hub (admin export, CSV)"
admin export --format csv --kind visit
admin export --format xlsx -o "$demo/merged.xlsx"
say "Statistics over every laptop"
admin stats --by site

step="starting laptop1's daemon and web app"
say "The staff web app of laptop1"
# The laptop daemon syncs in the background and serves the web app on
# 127.0.0.1 (a free port); `outpost ui --no-open` prints a one-time link.
"$bin/outpostd" --data-dir "$demo/laptop1" 2>"$demo/laptop1-daemon.log" &
pids+=($!)
# Wait for its app to listen (it writes ui.json), so `outpost ui` finds this
# daemon instead of starting a second one of its own.
for _ in $(seq 200); do
  [ -s "$demo/laptop1/ui.json" ] && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "error: laptop1's daemon stopped; its log:" >&2; cat "$demo/laptop1-daemon.log" >&2; exit 1; }
  sleep 0.1
done
link=$(l1 ui --no-open)
echo
echo "Open this link in a browser on this computer (it works once; \`$bin/outpost --data-dir $demo/laptop1 ui\` makes a new one):"
echo
echo "    $link"
echo
echo "Demo data is in $demo (hub, laptops, merged.xlsx). The hub and laptop1's daemon run until you press Ctrl-C."
step="running (Ctrl-C stops the demo)"
wait
