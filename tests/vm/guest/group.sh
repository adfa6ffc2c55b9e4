#!/bin/bash
# One check group: the helpers of lib.sh, then the group's script. Usage: group.sh CHECKS_FILE
set -u
source "$REPO/tests/vm/guest/lib.sh"
trap stop_all_daemons EXIT
source "$1"
