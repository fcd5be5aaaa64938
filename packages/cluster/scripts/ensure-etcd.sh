#!/usr/bin/env bash
# Installs etcd (server + etcdctl) from Debian when it is missing; does nothing when it is there.
# Safe to run concurrently: installs are serialized with flock on /tmp/libipc-apt.lock.
set -euo pipefail
if command -v etcd >/dev/null 2>&1; then
  echo "etcd present: $(etcd --version | head -1)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "etcd is missing and this is not root: install it with 'apt-get install -y etcd-server etcd-client' (as root)" >&2
  exit 1
fi
flock /tmp/libipc-apt.lock bash -c '
  command -v etcd >/dev/null 2>&1 && exit 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q etcd-server etcd-client
'
echo "etcd installed: $(etcd --version | head -1)"
