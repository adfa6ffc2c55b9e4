# The fingerprint reader as the touch, through the real kernel's hidraw: the real fprintd with
# libfprint's virtual reader on a private system bus with python-dbusmock's polkit stand-in (as
# tests/harness/fprintd.rs does over UDP), `fido2d --transport uhid --presence fingerprint`,
# libfido2's fido2-cred and fido2-assert as the platform, and a program of the owner
# (tests/e2e/eager_agent.py) that answers "allow" to everything as the agent and forges
# fprintd's "verify-match" on the bus. Only the owner's finger signs.

OWNER=fido2d-fp
OWNER_PRINT=fido2d-owner-right-index
# The private system bus, the polkit stand-in and fprintd (fprintd_up, finger, enrol).
source "$REPO/tests/vm/guest/fprintd.sh"

check fprintd fprintd_up || return 0
check enrol enrol || return 0
check_daemon --presence fingerprint --owner "$OWNER" --presence-timeout 6 || return 0

# A program of the owner (setpriv drops root first): the agent that answers "allow" to
# everything.
setpriv --reuid="$OWNER" --regid="$OWNER" --clear-groups \
  "$SYSPY" "$REPO/tests/e2e/eager_agent.py" /run/fido2d/control.sock > "$FP/agent.log" 2>&1 &
echo "$!" >> "$WORK/pids"

agent_connected() {
  local i
  for ((i = 0; i < 200; i++)); do
    grep -q '^connected' "$FP/agent.log" && return 0
    sleep 0.1
  done
  cat "$FP/agent.log"
  fail "the owner's eager agent did not connect"
}

# cred NAME [FINGER]: fido2-cred -M for rp NAME.fido2d.test, a finger of FINGER (if any) put on
# the reader meanwhile; its output in $WORK/NAME.out, its exit status returned.
cred() {
  local name=$1 print=${2:-}
  {
    head -c 32 /dev/urandom | base64
    echo "$name.fido2d.test"
    echo "user-$name"
    head -c 16 /dev/urandom | base64
  } > "$WORK/$name.param"
  [[ -z $print ]] || finger "$print" &
  local rc=0
  fido2-cred -M -q -r -i "$WORK/$name.param" -o "$WORK/$name.made" "$HIDRAW" es256 \
    > "$WORK/$name.out" 2>&1 || rc=$?
  wait
  cat "$WORK/$name.out"
  return "$rc"
}

owner_registers() {
  cred owner "$OWNER_PRINT" || fail "the owner's finger did not register"
  fido2-cred -V -i "$WORK/owner.made" -o "$WORK/owner.cred" es256 || fail "attestation refused"
}

owner_signs_in() {
  {
    head -c 32 /dev/urandom | base64
    echo owner.fido2d.test
  } > "$WORK/owner.aparam"
  finger "$OWNER_PRINT" &
  fido2-assert -G -p -r -i "$WORK/owner.aparam" -o "$WORK/owner.assert" "$HIDRAW" \
    || fail "the owner's finger did not sign in"
  wait
  tail -n +2 "$WORK/owner.cred" > "$WORK/owner.pem"
  head -n 4 "$WORK/owner.assert" | fido2-assert -V -p "$WORK/owner.pem" es256 \
    || fail "the assertion does not verify"
}

stranger_refused() {
  if cred stranger a-strangers-thumb; then fail "a stranger's finger registered"; fi
  grep -q OPERATION_DENIED "$WORK/stranger.out" || fail "not OPERATION_DENIED"
}

forge_a_match() {
  local device
  device=$(gdbus call --system --dest net.reactivated.Fprint \
    --object-path /net/reactivated/Fprint/Manager \
    --method net.reactivated.Fprint.Manager.GetDefaultDevice | cut -d"'" -f2)
  sleep 1
  setpriv --reuid="$OWNER" --regid="$OWNER" --clear-groups \
    dbus-send --system --type=signal "$device" \
    net.reactivated.Fprint.Device.VerifyStatus string:verify-match boolean:true
}

no_finger_times_out() {
  forge_a_match &
  if cred nobody; then fail "signed without a finger (the agent's allow or a forged match)"; fi
  wait
  grep -q USER_ACTION_TIMEOUT "$WORK/nobody.out" || fail "not USER_ACTION_TIMEOUT"
}

only_the_finger_approved() {
  cat "$FP/agent.log"
  grep -q '^answered' "$FP/agent.log" || fail "the eager agent answered nothing"
  local approved
  approved=$(grep -c ': Approved' "$FIDO2D_LOGFILE")
  ((approved == 2)) || fail "$approved approvals, want the owner's 2 touches"
}

check eager-agent agent_connected
check owner-finger-registers owner_registers
check owner-finger-signs-in owner_signs_in
check strangers-finger-refused stranger_refused
check no-finger-times-out no_finger_times_out
check agent-approved-nothing only_the_finger_approved
stop_fido2d > /dev/null 2>&1 || true

# presence = auto (the default): the owner has an enrolled finger and the reader answers.
auto_picks_the_reader() {
  start_fido2d --owner "$OWNER"
  grep 'presence: ' "$FIDO2D_LOGFILE"
  grep -q 'presence: fingerprint (auto: the owner has 1 finger(s) enrolled' "$FIDO2D_LOGFILE" \
    || fail "auto did not pick the reader"
  stop_fido2d
}
check auto-picks-the-reader auto_picks_the_reader
