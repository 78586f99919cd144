#!/usr/bin/env bash
# Installs headless Chromium for the dashboard's browser test (tests/it/dashboard.rs)
# unless a Chromium is already on PATH. Only as root with apt-get (Debian's package is
# `chromium`); anywhere else it says why it installs nothing and exits 0, and the browser
# test then prints that it is skipped.
set -euo pipefail
for candidate in chromium chromium-headless-shell chromium-browser; do
    if command -v "$candidate" >/dev/null 2>&1; then
        exit 0
    fi
done
if [[ "$(id -u)" != 0 ]]; then
    echo "install-chromium: not root, so not installing Chromium; the browser test will be skipped (install the 'chromium' package to run it)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get here, so not installing Chromium; the browser test will be skipped (install Chromium to run it)" >&2
    exit 0
fi
echo "installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
chromium --version
