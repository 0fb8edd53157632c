#!/usr/bin/env bash
# The README's test command: the whole suite, browser tests included.
# The browser tests (tests/tests/web.rs) drive Debian's chromium through
# chromedriver; when either is missing this installs them first (as root,
# or through sudo), so a fresh machine needs only the Rust toolchain and
# apt. Without apt the browser tests fail and say what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromedriver >/dev/null 2>&1 || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "== installing chromium and chromium-driver for the browser tests"
        if [ "$(id -u)" -eq 0 ]; then
            apt-get install -y chromium chromium-driver || { apt-get update && apt-get install -y chromium chromium-driver; }
        else
            sudo apt-get install -y chromium chromium-driver || { sudo apt-get update && sudo apt-get install -y chromium chromium-driver; }
        fi
    else
        echo "warning: no apt-get here; install chromium and chromedriver, or the browser tests fail" >&2
    fi
fi

exec cargo test --workspace --locked "$@"
