# Two python-fido2 clients on the one hidraw node at once: the second is told CHANNEL_BUSY while
# the first waits for presence; CANCEL ends that wait with CTAP2_ERR_KEEPALIVE_CANCEL; a
# retrying client is served when the first request ends. Presence is answered like a person at
# fido2d's terminal would: "y"/"n" lines written into a FIFO that is its stdin.

mkfifo "$WORK/presence"
# Held open read-write here, so fido2d never reads end-of-file between answers.
exec 7<> "$WORK/presence"
FIDO2D_STDIN=$WORK/presence check_daemon --presence terminal --presence-timeout 60 || return 0

concurrency() {
  PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$REPO/tests/e2e/concurrency.py" "$HIDRAW" "$WORK/presence" > "$WORK/concurrency.out" 2> "$WORK/concurrency.err"
  local rc=$?
  cat "$WORK/concurrency.out"
  cat "$WORK/concurrency.err" >&2
  return "$rc"
}
check two-clients concurrency
sed -n 's/^\(PASS\|FAIL\) \(.*\)$/\1 concurrency\/\2/p' "$WORK/concurrency.out" | tee -a "$RESULTS"
