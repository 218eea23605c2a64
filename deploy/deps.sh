#!/usr/bin/env bash
# Installs what lifeboat's tests and demo need on a Debian machine, and
# nothing when it is already there (fast on the second run).
set -euo pipefail

need=()
command -v ip  >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
# make build compiles the workload init (cmd/lifeboat-init) static.
command -v cc >/dev/null 2>&1 || need+=(gcc)
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# CRIU ≥ 4.2 (the system's if good enough, else a private copy): only root
# can checkpoint with CRIU; without root, app and none modes still work.
if [ "$(id -u)" = 0 ]; then
  bash "$(dirname "$0")/criu/install.sh" >/dev/null
else
  echo "deps: not root: skipping CRIU (app and none checkpoint modes only)" >&2
fi
