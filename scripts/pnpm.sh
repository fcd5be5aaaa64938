#!/bin/sh
# Runs the pnpm that package.json pins (packageManager) through corepack, on a fresh machine and as any user:
# `corepack enable` writes its shims next to node, which only root may do, so an ordinary user gets them in
# .corepack-bin/ of this checkout instead (turbo needs a `pnpm` on PATH). Native addons build against this
# Node's own headers when npm has no nodedir set (node-gyp would otherwise download them).
set -e
cd "$(dirname "$0")/.."
export COREPACK_ENABLE_DOWNLOAD_PROMPT="${COREPACK_ENABLE_DOWNLOAD_PROMPT:-0}"
export TURBO_TELEMETRY_DISABLED="${TURBO_TELEMETRY_DISABLED:-1}"
. scripts/nodedir.sh
if ! pnpm --version >/dev/null 2>&1; then
  if ! corepack enable pnpm 2>/dev/null; then
    mkdir -p .corepack-bin
    corepack enable --install-directory "$PWD/.corepack-bin" pnpm
    PATH="$PWD/.corepack-bin:$PATH"
    export PATH
  fi
fi
exec pnpm "$@"
