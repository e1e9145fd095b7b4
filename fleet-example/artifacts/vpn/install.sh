#!/bin/sh
# Keeps the tunnel to the data centre.
# Installs into the slot (the working directory); settings live in $GITFLEET_DATA, which survives
# upgrades. PACKET names the packet variant this artifact was built for.
set -eu
data="${GITFLEET_DATA:-$PWD/data}"
mkdir -p "$data"
[ -f "$data/vpn.conf" ] || printf 'peer=vpn.example.invalid:51820\n' > "$data/vpn.conf"
cp PACKET "$data/vpn.installed"
echo "vpn: installed $(cat PACKET)"
