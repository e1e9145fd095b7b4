#!/bin/sh
# Health check after install: the program runs and the slot holds the packet it was built for.
set -eu
[ -x bin/sensor-agent ] && [ -s PACKET ] && bin/sensor-agent --version >/dev/null
