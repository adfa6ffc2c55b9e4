# fprintd with libfprint's virtual reader for a check group (sourced by the group, bash): a
# private system bus, python-dbusmock's polkit stand-in and the real fprintd, as
# tests/harness/fprintd.rs does over UDP. Used by the fingerprint and pam groups.
#
# Before sourcing, the group sets OWNER (a system user, created here if missing) and
# OWNER_PRINT (the name of the owner's finger on the virtual reader). Sourcing starts the bus,
# the polkit stand-in and fprintd in the background (the group's end kills them) and defines:
#   fprintd_up     a check: waits until polkit's stand-in and fprintd answer on the bus
#   finger PRINT   puts a finger on the virtual reader as soon as someone claims it
#   enrol          a check: enrols OWNER_PRINT as the owner's right index finger
#   gdbus_retry    DEST PATH METHOD [ARGS]: a bus call, retried until it answers (60 s)
#   $FP, $SYSPY    fprintd's scratch directory, Debian's python3 (with dbusmock)

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
