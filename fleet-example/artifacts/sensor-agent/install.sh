#!/bin/sh
# Reads the sensors and reports them.
# Installs into the slot (the working directory); settings live in $GITFLEET_DATA, which survives
# upgrades. PACKET names the packet variant this artifact was built for.
set -eu
data="${GITFLEET_DATA:-$PWD/data}"
mkdir -p "$data"
[ -f "$data/sensor-agent.conf" ] || printf 'interval=60\n' > "$data/sensor-agent.conf"
cp PACKET "$data/sensor-agent.installed"
echo "sensor-agent: installed $(cat PACKET)"
