#!/usr/bin/env bash
# Installs nginx from Debian's nginx-light package when it is missing, for
# the proxy benchmark (bench/proxy.go), which runs its own nginx as a child
# process with a generated config on loopback ports. Nothing is started
# here, and the package's own service is kept from starting.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
echo "nginx is missing: installing Debian's nginx-light package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# invoke-rc.d asks policy-rc.d whether to start a service: 101 says no.
# Where the machine has no policy, one is put there for the install only.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light >/dev/null
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
