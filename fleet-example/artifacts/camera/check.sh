#!/bin/sh
# Health check after install: the program runs and the slot holds the packet it was built for.
set -eu
[ -x bin/camera ] && [ -s PACKET ] && bin/camera --version >/dev/null
