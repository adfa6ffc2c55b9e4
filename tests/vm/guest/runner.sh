#!/bin/bash
# Runs inside the guest's chroot (the host's root under an overlay): every selected check group,
# each in its own bash with a deadline, then marks the run complete for the host.
set -u
source /vmout/run.env
results=/vmout/results.txt
: > "$results"
echo "GUEST: $(uname -r), groups: $CHECK_GROUPS"
for group in $CHECK_GROUPS; do
  file=$(ls "$REPO"/tests/vm/checks/[0-9]*-"$group".sh 2>/dev/null | head -n 1)
  # A group may ask for more time than the default 240 s with a "# group-timeout: N" line.
  limit=$(sed -n 's/^# group-timeout: *\([0-9]\+\).*/\1/p' "$file" | head -n 1)
  limit=${limit:-240}
  echo "GUEST: ---- group $group ($(cut -d' ' -f1 /proc/uptime) s, limit $limit s)"
  GROUP=$group timeout --kill-after=5 "$limit" \
    bash "$REPO/tests/vm/guest/group.sh" "$file"
  rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "FAIL $group/finished: the group did not finish within $limit s" | tee -a "$results"
  fi
  # A group's daemons never outlive it.
  for pid in $(cat "/tmp/vm-$group/pids" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
done
echo "GUEST: done ($(cut -d' ' -f1 /proc/uptime) s)"
touch /vmout/done
