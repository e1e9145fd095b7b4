#!/bin/sh
# Camera driver for the cam-v2 board.
# Installs into the slot (the working directory); settings live in $GITFLEET_DATA, which survives
# upgrades. PACKET names the packet variant this artifact was built for.
set -eu
data="${GITFLEET_DATA:-$PWD/data}"
mkdir -p "$data"
[ -f "$data/camera.conf" ] || printf 'device=/dev/video0\nresolution=1280x720\n' > "$data/camera.conf"
cp PACKET "$data/camera.installed"
echo "camera: installed $(cat PACKET)"
