#!/usr/bin/env bash
# Hostile load (DESIGN §7, issue 10): the figures behind "with 1,000 idle or
# half-sent connections open, a normal sync completes within 5 s" and
# "tokenless large bodies never grow hub RSS by more than 100 MiB".
#
#   bench/hostile.sh            # debug build
#   PROFILE=release bench/hostile.sh
#
# A hub is started at the usual open-file soft limit of 1,024 (under
# `prlimit --nofile=1024:`, hard limit unchanged: the hub raises its own
# soft limit at start), 1,000 sockets are opened to it (half idle, half with
# a request head that never ends), and `outpost sync` of a laptop with 100
# new records is timed beside them. Then 40 tokenless 15 MiB push bodies
# are sent (8 at a time) and the hub's VmRSS is read before, right after,
# and 15 s later. Everything runs on 127.0.0.1 in a temporary folder and
# stops by itself. Needs python3 and prlimit (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "needs python3: apt-get install -y python3" >&2; exit 1; }
command -v prlimit >/dev/null || { echo "needs prlimit: apt-get install -y util-linux" >&2; exit 1; }

profile=${PROFILE:-debug}
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build --locked -q "${flag[@]}" -p outpost-cli -p outpost-daemon
bin=${CARGO_TARGET_DIR:-target}/$profile

work=$(mktemp -d)
umask 077
trap 'kill $hub_pid 2>/dev/null || true; rm -rf "$work"' EXIT
unset OUTPOST_DATA_DIR OUTPOST_HUB_URL OUTPOST_ADMIN_TOKEN
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$bin/outpostd" hub init --data-dir "$work/hub" >"$work/admin-token" 2>/dev/null
prlimit --nofile=1024: -- "$bin/outpostd" hub --data-dir "$work/hub" --listen "127.0.0.1:$port" 2>/dev/null &
hub_pid=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
admin() { "$bin/outpost" --data-dir "$work/admin" admin --hub "$url" --token-file "$work/admin-token" "$@"; }
admin org add mjolby "Mjölby kommun" 2>/dev/null
l() { "$bin/outpost" --data-dir "$work/laptop" "$@"; }
l init --org mjolby --site "Mjölby bibliotek" --staff AB >/dev/null
l enroll "$url" "$(admin invite --org mjolby)" 2>/dev/null
for i in $(seq 100); do
  l visit add --date 2025-03-04 --minutes 30 --channel drop_in --service BankID \
    --category e_service --outcome solved --age-band 65_79 --language sv --note "besök $i" >/dev/null
done

echo "hub open-file soft limit at start: 1024 (prlimit); after the hub raised it: $(awk '/Max open files/ {print $4}' /proc/$hub_pid/limits)"

python3 - "$port" "$hub_pid" "$bin/outpost" "$work/laptop" <<'PY'
import os, socket, subprocess, sys, threading, time
port, pid, outpost, laptop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
socks = []
for i in range(1000):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2:
        s.sendall(b"POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Le")
    socks.append(s)
print(f"sockets held open: {len(socks)} (500 idle, 500 half-sent heads)")
t = time.monotonic()
r = subprocess.run([outpost, "--data-dir", laptop, "sync"], capture_output=True, text=True)
took = time.monotonic() - t
print(f"outpost sync beside them: exit {r.returncode}, {took:.2f} s: {r.stdout.strip()}")
for s in socks:
    s.close()

base = rss()
body = b"x" * (15 * 1024 * 1024)
def send(n):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(30)
        try:
            s.sendall(f"POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            s.sendall(body)
        except OSError:
            pass
        try:
            s.recv(64)
        except OSError:
            pass
        s.close()
t = time.monotonic()
threads = [threading.Thread(target=send, args=(5,)) for _ in range(8)]
for th in threads: th.start()
for th in threads: th.join()
peak = rss()
print(f"40 tokenless 15 MiB bodies in {time.monotonic()-t:.2f} s; hub RSS {base:.1f} MiB before, {peak:.1f} MiB right after (+{peak-base:.1f} MiB)")
time.sleep(15)
print(f"hub RSS 15 s later: {rss():.1f} MiB")
PY
