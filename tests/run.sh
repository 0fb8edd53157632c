#!/usr/bin/env bash
# The README's test command: the whole suite, browser, spreadsheet and
# PostgreSQL tests included.
#
# The tests use real tools: Debian's chromium through chromedriver (web
# pages, reports), LibreOffice (reading back the XLSX files) and a
# PostgreSQL server (the hub's second backend; the tests start and stop
# their own server on a loopback port). Whatever of these is missing is
# installed first from Debian's packages (as root, or through sudo), so a
# fresh machine needs only the Rust toolchain and apt. Without apt the
# tests that need a missing tool fail and name the package to install.
set -euo pipefail
cd "$(dirname "$0")/.."

# Chromium with its recommended fonts (screenshots are read by people);
# LibreOffice and PostgreSQL without recommends (they would pull in Java
# and more, which the tests do not use).
browser=()
command -v chromedriver >/dev/null 2>&1 || browser+=(chromium-driver)
{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } || browser+=(chromium)
other=()
{ command -v soffice >/dev/null 2>&1 || command -v libreoffice >/dev/null 2>&1; } || other+=(libreoffice-calc-nogui)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || other+=(postgresql)

apt_install() {
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "$@" \
        || { "${sudo[@]}" apt-get update && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "$@"; }
}

if [ ${#browser[@]} -gt 0 ] || [ ${#other[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${browser[*]} ${other[*]} for the tests (Debian packages)"
        [ ${#browser[@]} -eq 0 ] || apt_install "${browser[@]}"
        [ ${#other[@]} -eq 0 ] || apt_install --no-install-recommends "${other[@]}"
    else
        echo "warning: no apt-get here; install ${browser[*]} ${other[*]}, or the tests that need them fail" >&2
    fi
fi

exec cargo test --workspace --locked "$@"
