#!/bin/sh
# Removes what install.sh recorded; settings in $GITFLEET_DATA are kept for a later install.
set -eu
data="${GITFLEET_DATA:-$PWD/data}"
rm -f "$data/sensor-agent.installed"
echo "sensor-agent: uninstalled"
