#!/usr/bin/env bash
# Outpost end to end on one machine, with embedded defaults: a hub on
# 127.0.0.1 (SQLite), two laptops (two data dirs) that record offline,
# sync, and an admin export of the merged records.
# Everything lives in ./demo-data (or $OUTPOST_DEMO_DIR); nothing touches
# your real Outpost data.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --locked -q -p outpost-cli -p outpost-daemon
bin=target/debug
demo=${OUTPOST_DEMO_DIR:-./demo-data}
port=${OUTPOST_DEMO_PORT:-7878}
hub_url="http://127.0.0.1:$port"
rm -rf "$demo"
# Everything here (databases, the admin token file) is for this user only.
umask 077
mkdir -p "$demo"
unset OUTPOST_DATA_DIR OUTPOST_HUB_URL OUTPOST_ADMIN_TOKEN
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Start a hub on $hub_url"
# The admin token goes to a file only this user can read, and from there
# to `outpost admin --token-file`: never into argv, where `ps` shows it.
"$bin/outpostd" hub init --data-dir "$demo/hub" 2>/dev/null >"$demo/admin-token"
"$bin/outpostd" hub --data-dir "$demo/hub" --listen "127.0.0.1:$port" 2>"$demo/hub.log" &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
admin() { "$bin/outpost" --data-dir "$demo/admin" admin --hub "$hub_url" --token-file "$demo/admin-token" "$@"; }
admin org add mjolby "Mjölby kommun"

say "Two laptops, enrolled with one-time codes"
for laptop in laptop1 laptop2; do
  site=$([ $laptop = laptop1 ] && echo "Mjölby bibliotek" || echo "Skänninge bibliotek")
  "$bin/outpost" --data-dir "$demo/$laptop" init --org mjolby --site "$site" --staff AB >/dev/null
  "$bin/outpost" --data-dir "$demo/$laptop" enroll "$hub_url" "$(admin invite --org mjolby)"
done
l1() { "$bin/outpost" --data-dir "$demo/laptop1" "$@"; }
l2() { "$bin/outpost" --data-dir "$demo/laptop2" "$@"; }

say "Record offline on both laptops"
v=$(l1 visit add --date 2025-03-04 --time 10:15 --minutes 30 --channel drop_in --service BankID \
      --category e_service --outcome solved --age-band 65_79 --language sv \
      --barrier "BankID:login:hade glömt säkerhetskoden" --note "Hjälp att aktivera Mobilt BankID")
echo "laptop1 saved visit $v"
l1 visit add --date 2025-03-04 --minutes 45 --channel drop_in --service Försäkringskassan 1177 \
   --category e_service --outcome partly --age-band 80_plus --language ar --assistive interpreter >/dev/null
l2 visit add --date 2025-03-05 --minutes 20 --channel outreach --service Skola \
   --category e_service --outcome solved --age-band 25_44 --language so >/dev/null
c=$(l2 course add --title "Nybörjarkurs internet" --partner Medborgarskolan)
l2 course session "$c" --date 2025-03-06 --time 13:00 --minutes 90 --participants 8 >/dev/null
echo "A note with a personal identity number is refused:"
l1 visit add --date 2025-03-04 --minutes 10 --channel phone --service CSN --category e_service \
   --outcome solved --age-band 45_64 --language sv --note "ring 19121212-1212" || true

say "Sync both laptops"
l1 sync; l2 sync; l1 sync
l1 list

say "Merged records on the hub (admin export, CSV)"
admin export --format csv --kind visit
admin export --format xlsx -o "$demo/merged.xlsx"
say "Statistics over every laptop"
admin stats --by site
echo
echo "Demo data is in $demo (hub, laptops, merged.xlsx)."
