#!/bin/sh
# Ships the gateway logs.
# Installs into the slot (the working directory); settings live in $GITFLEET_DATA, which survives
# upgrades. PACKET names the packet variant this artifact was built for.
set -eu
data="${GITFLEET_DATA:-$PWD/data}"
mkdir -p "$data"
[ -f "$data/logger.conf" ] || printf 'target=syslog\nlevel=info\n' > "$data/logger.conf"
cp PACKET "$data/logger.installed"
echo "logger: installed $(cat PACKET)"
