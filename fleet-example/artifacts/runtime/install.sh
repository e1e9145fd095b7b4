#!/bin/sh
# The language runtime other packets run on.
# Installs into the slot (the working directory); settings live in $GITFLEET_DATA, which survives
# upgrades. PACKET names the packet variant this artifact was built for.
set -eu
data="${GITFLEET_DATA:-$PWD/data}"
mkdir -p "$data"
[ -f "$data/runtime.conf" ] || printf 'threads=2\n' > "$data/runtime.conf"
cp PACKET "$data/runtime.installed"
echo "runtime: installed $(cat PACKET)"
