# The fingerprint reader as the touch, through the real kernel's hidraw: the real fprintd with
# libfprint's virtual reader on a private system bus with python-dbusmock's polkit stand-in (as
# tests/src/fprintd.rs does over UDP), `fido2d --transport uhid --presence fingerprint`,
# libfido2's fido2-cred and fido2-assert as the platform, and a program of the owner
# (tests/e2e/eager_agent.py) that answers "allow" to everything as the agent and forges
# fprintd's "verify-match" on the bus. Only the owner's finger signs.

OWNER=fido2d-fp
OWNER_PRINT=fido2d-owner-right-index
SYSPY=/usr/bin/python3
FP=$WORK/fp
mkdir -p "$FP/prints"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$FP/system_bus_socket

id "$OWNER" > /dev/null 2>&1 \
  || useradd --system --no-create-home --shell /usr/sbin/nologin "$OWNER"

# The bus, the polkit stand-in and fprintd run for the whole group; the group's end kills them.
cat > "$FP/system.conf" << EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>$DBUS_SYSTEM_BUS_ADDRESS</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/> <allow own="*"/>
    <allow send_type="method_call"/> <allow send_type="signal"/>
    <allow send_type="method_return"/> <allow send_type="error"/>
    <allow receive_type="method_call"/> <allow receive_type="signal"/>
    <allow receive_type="method_return"/> <allow receive_type="error"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$FP/system.conf" --nofork --nopidfile > "$LOGS/$GROUP.dbus.log" 2>&1 &
echo "$!" >> "$WORK/pids"
for ((i = 0; i < 300; i++)); do
  [[ -S $FP/system_bus_socket ]] && break
  sleep 0.1
done
"$SYSPY" -m dbusmock --system --template polkitd > "$LOGS/$GROUP.polkit.log" 2>&1 &
echo "$!" >> "$WORK/pids"
FP_VIRTUAL_DEVICE=$FP/finger.sock STATE_DIRECTORY=$FP/prints /usr/libexec/fprintd -t \
  > "$LOGS/$GROUP.fprintd.log" 2>&1 &
echo "$!" >> "$WORK/pids"

# gdbus_retry DEST PATH METHOD [ARGS]: calls until it answers (up to 60 s).
gdbus_retry() {
  local dest=$1 path=$2 method=$3 i
  shift 3
  for ((i = 0; i < 300; i++)); do
    gdbus call --system --dest "$dest" --object-path "$path" --method "$method" "$@" && return 0
    sleep 0.2
  done
  return 1
}

fprintd_up() {
  [[ -S $FP/system_bus_socket ]] || fail "the private system bus did not start"
  gdbus_retry org.freedesktop.PolicyKit1 /org/freedesktop/PolicyKit1/Authority \
    org.freedesktop.DBus.Mock.AllowUnknown true || fail "the polkit stand-in did not start"
  gdbus_retry net.reactivated.Fprint /net/reactivated/Fprint/Manager \
    net.reactivated.Fprint.Manager.GetDefaultDevice || fail "fprintd did not start"
}

# finger PRINT: puts a finger on the virtual reader as soon as it listens (someone claimed it).
finger() {
  "$SYSPY" - "$FP/finger.sock" "SCAN $1" << 'PY'
import socket, sys, time
for _ in range(600):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.sendall(sys.argv[2].encode() + b"\n")
        s.close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("nobody claimed the fingerprint reader")
PY
}

enrol() {
  fprintd-enroll -f right-index-finger "$OWNER" > "$FP/enroll.log" 2>&1 &
  local enroll=$! stage i
  for stage in 1 2 3 4 5; do
    finger "$OWNER_PRINT"
    for ((i = 0; i < 300; i++)); do
      (($(grep -c 'enroll-stage-passed\|enroll-completed' "$FP/enroll.log") >= stage)) && break
      sleep 0.1
    done
  done
  wait "$enroll" || { cat "$FP/enroll.log"; fail "fprintd-enroll failed"; }
  cat "$FP/enroll.log"
  grep -q enroll-completed "$FP/enroll.log" || fail "no enroll-completed"
}

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
