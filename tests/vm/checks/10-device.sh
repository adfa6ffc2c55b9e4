# The virtual key as the kernel, udev and libfido2 see it; its life cycle; the start-up errors.

check_daemon --presence deny || return 0

sysfs_identity() {
  local uevent=/sys/class/hidraw/${HIDRAW#/dev/}/device/uevent
  cat "$uevent"
  grep -qx 'HID_ID=0003:00001209:00000001' "$uevent" || fail "not USB 1209:0001"
  grep -qx 'HID_NAME=fido2d virtual security key' "$uevent" || fail "wrong HID_NAME"
  grep -Eqx 'HID_UNIQ=[[:graph:]]+' "$uevent" || fail "HID_UNIQ is not printable ASCII"
  grep -qx 'DRIVER=hid-generic' "$uevent" || fail "not bound by hid-generic"
}
check sysfs-identity sysfs_identity

report_descriptor() {
  local rd=/sys/class/hidraw/${HIDRAW#/dev/}/device/report_descriptor
  od -An -tx1 -v "$rd"
  # usage page 0xF1D0, usage 0x01, 64-byte input and output reports
  [[ $(od -An -tx1 -v "$rd" | tr -d ' \n') = 06d0f10901a1010920150026ff007508954081020921150026ff00750895409102c0 ]] \
    || fail "the report descriptor differs from the FIDO one"
}
check report-descriptor report_descriptor

# systemd's own rules, run by a real systemd-udevd: fido_id reads the report descriptor,
# 60-fido-id.rules sets ID_SECURITY_TOKEN=1 (and the security-device tag), 70-uaccess.rules then
# tags the node uaccess, which gives the person at the seat access to it.
udev_security_token() {
  export SYSTEMD_IGNORE_CHROOT=1 # udevadm does nothing in a chroot otherwise
  /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never || fail "systemd-udevd did not start"
  udevadm trigger --action=add --subsystem-match=hidraw
  udevadm settle --timeout=30
  udevadm info --query=all "$HIDRAW" | tee "$WORK/udev-info"
  udevadm control --exit
  grep -qx 'E: ID_FIDO_TOKEN=1' "$WORK/udev-info" || fail "fido_id did not run or did not see a FIDO token"
  grep -qx 'E: ID_SECURITY_TOKEN=1' "$WORK/udev-info" || fail "udev rules set no ID_SECURITY_TOKEN=1"
  grep -Eqx 'E: (CURRENT_)?TAGS=.*:uaccess:.*' "$WORK/udev-info" || fail "udev gives no uaccess tag"
  grep -Eqx 'E: (CURRENT_)?TAGS=.*:security-device:.*' "$WORK/udev-info" || fail "no security-device tag"
}
check udev-security-token udev_security_token

token_list() {
  fido2-token -L | tee "$WORK/list"
  # libfido2 takes the strings in parentheses from a USB parent device, which uhid has not.
  grep -F "$HIDRAW: vendor=0x1209, product=0x0001" "$WORK/list" \
    || fail "fido2-token -L does not list $HIDRAW as the fido2d key"
}
check fido2-token-L token_list

token_info() {
  fido2-token -I "$HIDRAW" | tee "$WORK/info"
  grep -q '^proto: 0x02' "$WORK/info" || fail "CTAPHID protocol is not 2"
  grep -Eq '^version strings: .*FIDO_2_0' "$WORK/info" || fail "no FIDO_2_0"
  grep -Eq '^version strings: .*U2F_V2' "$WORK/info" || fail "no U2F_V2"
  grep -q '^aaguid: ' "$WORK/info" || fail "no aaguid"
  grep -Eq '^algorithms: .*es256.*eddsa|^algorithms: .*eddsa.*es256' "$WORK/info" || fail "es256/eddsa missing"
}
check fido2-token-I token_info

# SIGTERM destroys the device; a new daemon creates it anew; SIGINT destroys it as well.
restart() {
  local uniq
  start_fido2d --presence deny
  uniq=$(hidraw_uniq "$HIDRAW")
  stop_fido2d TERM || fail "fido2d exited with status $? on SIGTERM"
  grep -q 'virtual security key removed' "$FIDO2D_LOGFILE" || fail "no removal logged"
  ! hidraw_with_uniq_exists "$uniq" || fail "the hidraw node of $uniq is still there after SIGTERM"
  start_fido2d --presence deny
  fido2-token -I "$HIDRAW" | grep '^version strings: ' || fail "the new device does not answer"
  uniq=$(hidraw_uniq "$HIDRAW")
  stop_fido2d INT || fail "fido2d exited with status $? on SIGINT"
  ! hidraw_with_uniq_exists "$uniq" || fail "the hidraw node is still there after SIGINT"
  echo "device removed on SIGTERM and SIGINT, created anew in between"
}
stop_fido2d
check restart restart

# Without /dev/uhid (hidden in a private mount namespace) and without permission (as nobody):
# one line that says what to do, and a non-zero exit.
no_uhid() {
  local rc=0
  unshare -m sh -c 'mount -t tmpfs none /dev && exec "$0" --transport uhid --state-dir "$1" --presence deny' \
    "$FIDO2D" "$WORK/state" > "$WORK/no-uhid.out" 2>&1 || rc=$?
  cat "$WORK/no-uhid.out"
  ((rc != 0)) || fail "exit status 0 without /dev/uhid"
  grep -E 'ERROR' "$WORK/no-uhid.out" | grep -q 'does not exist: load the uhid module (`sudo modprobe uhid`' \
    || fail "no 'load the uhid module' line"
  (($(grep -c ERROR "$WORK/no-uhid.out") == 1)) || fail "more than one error line"
}
check error-no-uhid no_uhid

no_permission() {
  local state=$WORK/nobody-state rc=0
  mkdir -p "$state"
  chown 65534:65534 "$state"
  chmod 700 "$state"
  setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    "$FIDO2D" --transport uhid --state-dir "$state" --keystore file --presence deny \
    --control-socket "$state/control.sock" > "$WORK/no-perm.out" 2>&1 || rc=$?
  cat "$WORK/no-perm.out"
  ((rc != 0)) || fail "exit status 0 without permission"
  grep ERROR "$WORK/no-perm.out" | grep -q 'no permission to open /dev/uhid: run fido2d as root' \
    || fail "no 'run as root' line"
}
check error-no-permission no_permission
