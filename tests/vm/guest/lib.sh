# Helpers for the guest's check groups (sourced by group.sh; bash).
#
#   check NAME CMD [ARGS...]   runs CMD (a command or a shell function) in a subshell with
#                              `set -e`, its output in $LOGS/<group>.NAME.log; records
#                              "PASS <group>/NAME (t s)" or "FAIL <group>/NAME (t s): <last lines
#                              of its output>". Variables it sets do not outlive it: pass results
#                              on in files under $WORK.
#   fail MESSAGE               ends the check with MESSAGE as its reason
#   check_daemon [ARGS...]     start_fido2d in this shell, recorded as the check "daemon" (or
#                              $DAEMON_CHECK, for a group's second daemon)
#   start_fido2d [ARGS...]     starts fido2d --transport uhid on a state dir of this group (with
#                              --keystore file unless ARGS name one) and waits for its ready
#                              line; sets FIDO2D_PID, HIDRAW, FIDO2D_LOGFILE; its stdin is
#                              $FIDO2D_STDIN (default /dev/null)
#   stop_fido2d [SIGNAL]       stops it (default TERM) and returns its exit status
#   answer_presence FIFO ANSWER...  answers the running daemon's next presence prompts
#                              (--presence terminal, its stdin the FIFO), one ANSWER ("y" or
#                              "n") each, in order, as a person at its terminal, in the
#                              background: `wait "$PRESENCE_ANSWERER"` after the client
#   $WORK                      a scratch directory of this group (tmpfs)
#   $FIDO2D, $PYTHON, $REPO    the daemon under test, python with python-fido2, the checkout

LOGS=/vmout/logs
RESULTS=/vmout/results.txt
WORK=/tmp/vm-$GROUP
mkdir -p "$WORK" "$LOGS"
export NO_COLOR=1

_elapsed() {
  local ms=$((($(date +%s%N) - $1) / 1000000))
  printf '%d.%03d s' $((ms / 1000)) $((ms % 1000))
}

_record() {
  echo "$1" | tee -a "$RESULTS"
}

check() {
  local name=$1
  shift
  local log=$LOGS/$GROUP.$name.log
  local t0 rc=0
  t0=$(date +%s%N)
  # Not in a condition: `set -e` inside the subshell stays in force.
  (set -e; "$@") > "$log" 2>&1 || rc=$?
  if ((rc == 0)); then
    _record "PASS $GROUP/$name ($(_elapsed "$t0"))"
    return 0
  fi
  local why
  why=$(grep -v '^[[:space:]]*$' "$log" | tail -n 3 | tr '\n' ' ' | cut -c1-300)
  _record "FAIL $GROUP/$name ($(_elapsed "$t0")): ${why:-exit status $rc, no output}"
  return 1
}

fail() {
  echo "$*"
  exit 1
}

check_daemon() {
  local name=${DAEMON_CHECK:-daemon} t0
  local log=$LOGS/$GROUP.$name.log
  t0=$(date +%s%N)
  if start_fido2d "$@" > "$log" 2>&1; then
    _record "PASS $GROUP/$name ($(_elapsed "$t0"))"
    return 0
  fi
  _record "FAIL $GROUP/$name ($(_elapsed "$t0")): $(tail -n 2 "$log" | tr '\n' ' ' | cut -c1-300)"
  return 1
}

_fido2d_runs=0

start_fido2d() {
  _fido2d_runs=$((_fido2d_runs + 1))
  FIDO2D_LOGFILE=$LOGS/$GROUP.fido2d.$_fido2d_runs.log
  local state=$WORK/state
  mkdir -p "$state"
  chmod 700 "$state"
  # The guest has a TPM (tests/vm/run.sh attaches one): groups that do not name a keystore get
  # the encrypted file, whose EdDSA keys and timings they expect.
  local keystore=(--keystore file)
  [[ " $* " = *" --keystore "* ]] && keystore=()
  "$FIDO2D" --transport uhid --state-dir "$state" "${keystore[@]}" "$@" \
    < "${FIDO2D_STDIN:-/dev/null}" > "$FIDO2D_LOGFILE" 2>&1 &
  FIDO2D_PID=$!
  echo "$FIDO2D_PID" >> "$WORK/pids"
  HIDRAW=
  local i
  for ((i = 0; i < 300; i++)); do
    HIDRAW=$(sed -n 's|.*fido2d ready: virtual security key on \(/dev/hidraw[0-9]*\).*|\1|p' \
      "$FIDO2D_LOGFILE" | head -n 1)
    [[ -n $HIDRAW ]] && break
    if ! kill -0 "$FIDO2D_PID" 2>/dev/null; then
      echo "fido2d exited before its ready line:"
      cat "$FIDO2D_LOGFILE"
      return 1
    fi
    sleep 0.1
  done
  if [[ -z $HIDRAW ]]; then
    echo "fido2d printed no ready line naming a hidraw node within 30 s:"
    cat "$FIDO2D_LOGFILE"
    return 1
  fi
  echo "fido2d $FIDO2D_PID ready on $HIDRAW"
}

stop_fido2d() {
  local signal=${1:-TERM}
  [[ -n ${FIDO2D_PID:-} ]] || return 0
  kill "-$signal" "$FIDO2D_PID" 2>/dev/null
  local rc=0
  wait "$FIDO2D_PID" || rc=$?
  FIDO2D_PID=
  return "$rc"
}

stop_all_daemons() {
  stop_fido2d TERM > /dev/null 2>&1 || true
}

# answer_presence FIFO ANSWER...: fido2d --presence terminal (its stdin the FIFO) prints
# ">>> fido2d: ... allow? [y/N]" to its log for each presence request and ignores lines written
# before the question. Starts a background answerer (its pid in $PRESENCE_ANSWERER; `wait` for
# it after the client) that writes each ANSWER once its own prompt is in the log, prompts
# counted from this call (before the client starts); it fails if a prompt does not come within
# 60 s.
answer_presence() {
  local fifo=$1 seen
  shift
  seen=$(_presence_prompts)
  _answer_presence "$fifo" "$seen" "$@" &
  # shellcheck disable=SC2034 # used by the groups
  PRESENCE_ANSWERER=$!
}

_answer_presence() {
  local fifo=$1 seen=$2 answer i
  shift 2
  for answer in "$@"; do
    seen=$((seen + 1))
    for ((i = 0; i < 600; i++)); do
      (($(_presence_prompts) >= seen)) && break
      sleep 0.1
    done
    if (($(_presence_prompts) < seen)); then
      echo "answer_presence: no presence prompt number $seen within 60 s"
      return 1
    fi
    echo "$answer" > "$fifo"
    echo "answer_presence: prompt $seen answered '$answer'"
  done
}

_presence_prompts() {
  grep -c '^>>> fido2d: .* allow? \[y/N\]' "$FIDO2D_LOGFILE" || true
}

# The serial number of the running daemon's device, from its hidraw node in sysfs.
hidraw_uniq() {
  sed -n 's/^HID_UNIQ=//p' "/sys/class/hidraw/${1#/dev/}/device/uevent"
}

# Whether any hidraw node still belongs to HID_UNIQ=$1.
hidraw_with_uniq_exists() {
  grep -qx "HID_UNIQ=$1" /sys/class/hidraw/*/device/uevent 2>/dev/null
}
