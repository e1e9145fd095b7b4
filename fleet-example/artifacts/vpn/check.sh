#!/bin/sh
# Health check after install: the program runs and the slot holds the packet it was built for.
set -eu
[ -x bin/vpn ] && [ -s PACKET ] && bin/vpn --version >/dev/null
