# The key as the Firefox and Chromium snaps see it, without snapd: dist/udev/69-fido2d-snap.rules
# under a real systemd-udevd tags fido2d's hidraw node (and no other uhid device) with the
# browsers' snap tags and runs snap-device-helper (a stand-in here) on add and remove; then
# snapd's own AppArmor rules for a browser (tests/vm/apparmor/), applied with aa-exec, let
# libfido2 use the node and let a reader of the sysfs report descriptor in only with
# hardware-observe. See issue 20, README (Troubleshooting) and dist/udev/README.md.

export SYSTEMD_IGNORE_CHROOT=1 # udevadm does nothing in a chroot otherwise
RULES_DIR=/usr/lib/udev/rules.d # where the .deb installs the rule
HELPER=/usr/lib/snapd/snap-device-helper
HELPER_LOG=$WORK/snap-device-helper.log
SNAP_TAGS=(snap_firefox_firefox snap_firefox_geckodriver snap_chromium_chromium)
AA_DIR=$REPO/tests/vm/apparmor
AA_PROFILES=(fido2d-test-snap-browser fido2d-test-snap-browser-hardware-observe)

# Whatever happens, the next group finds the guest as it was: no udevd, no rule, no helper.
snap_cleanup() {
  stop_all_daemons
  for pid in $(cat "$WORK/uhid-pids" 2>/dev/null); do kill "$pid" 2>/dev/null; done
  udevadm control --exit 2>/dev/null
  rm -f "$RULES_DIR/69-fido2d-snap.rules" /etc/udev/rules.d/70-snap.firefox.rules "$HELPER"
  if [[ -d /sys/kernel/security/apparmor ]]; then
    for profile in "${AA_PROFILES[@]}"; do
      echo "profile $profile {}" | apparmor_parser -R 2>/dev/null
    done
  fi
}
trap snap_cleanup EXIT

# The character device numbers of a node, as major:minor.
majmin() {
  printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"
}

# "add" or "remove" lines of the stand-in helper's log for one node.
helper_calls() {
  local action=$1 devpath=$2 mm=$3 tag
  for tag in "${SNAP_TAGS[@]}"; do
    grep -cxF "$action $tag $devpath $mm" "$HELPER_LOG" || true
  done
}

setup() {
  install -D -m 644 "$REPO/dist/udev/69-fido2d-snap.rules" "$RULES_DIR/69-fido2d-snap.rules"
  # A stand-in for snapd's helper: it records how udev calls it.
  install -d /usr/lib/snapd
  printf '#!/bin/sh\necho "$*" >> %s\n' "$HELPER_LOG" > "$HELPER"
  chmod 755 "$HELPER"
  : > "$HELPER_LOG"
  udevadm control --exit 2>/dev/null || true # none should run; if one does, it has old rules
  /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never || fail "systemd-udevd did not start"
  udevadm settle --timeout=30
}
check setup setup || return 0

check_daemon --presence deny || return 0
udevadm settle --timeout=30
DEVPATH=$(udevadm info --query=path "$HIDRAW")
MAJMIN=$(majmin "$HIDRAW")
echo "$DEVPATH $MAJMIN" > "$WORK/first-node"

udev_info() {
  echo "$HIDRAW: $DEVPATH ($MAJMIN)"
  udevadm info --query=all "$HIDRAW" | tee "$WORK/udev-info"
  grep -qx 'E: ID_FIDO_TOKEN=1' "$WORK/udev-info" || fail "fido_id did not see a FIDO token"
  grep -qx 'E: ID_SECURITY_TOKEN=1' "$WORK/udev-info" || fail "no ID_SECURITY_TOKEN=1"
  local current tag
  current=$(sed -n 's/^E: CURRENT_TAGS=//p' "$WORK/udev-info")
  [[ -n $current ]] || fail "udevadm info shows no CURRENT_TAGS"
  for tag in "${SNAP_TAGS[@]}" uaccess; do
    [[ $current = *":$tag:"* ]] || fail "$tag is not in CURRENT_TAGS=$current"
  done
}
check udev-info udev_info

# snap-confine finds a snap's devices through udev's tag index, as this enumeration does.
tag_index() {
  local tag listed
  for tag in "${SNAP_TAGS[@]}"; do
    ls -l "/run/udev/tags/$tag/"
    [[ -e /run/udev/tags/$tag/c$MAJMIN ]] || fail "/run/udev/tags/$tag/ does not list c$MAJMIN"
    listed=$(udevadm trigger --dry-run --verbose --tag-match="$tag")
    echo "udevadm trigger --dry-run --tag-match=$tag: $listed"
    [[ $listed = "/sys$DEVPATH" ]] || fail "the devices tagged $tag are not just /sys$DEVPATH"
  done
}
check tag-index tag_index

helper_add() {
  cat "$HELPER_LOG"
  [[ $(helper_calls add "$DEVPATH" "$MAJMIN" | tr '\n' ' ') = "1 1 1 " ]] \
    || fail "snap-device-helper was not called once with add <tag> $DEVPATH $MAJMIN for each of ${SNAP_TAGS[*]}"
}
check helper-add helper_add

# Other uhid devices get no snap tag: fido2d's id with another name, fido2d's name with another
# product id, fido2d's name and id with a descriptor that is not a FIDO one.
other_uhid() {
  local spec uniq node out path tags
  : > "$WORK/uhid-pids"
  for spec in "other-name|another FIDO key|0x0001|fido" \
    "other-product|fido2d virtual security key|0x0002|fido" \
    "other-descriptor|fido2d virtual security key|0x0001|vendor"; do
    IFS='|' read -r uniq name pid descriptor <<< "$spec"
    out=$WORK/uhid-$uniq.out
    "$PYTHON" "$REPO/tests/vm/snap/uhid_device.py" --uniq "$uniq" --name "$name" --vid 0x1209 \
      --pid "$pid" --descriptor "$descriptor" > "$out" 2>&1 &
    echo $! >> "$WORK/uhid-pids"
    echo $! >> "$WORK/pids"
    for _ in $(seq 100); do grep -q '^ready ' "$out" && break; sleep 0.1; done
    node=$(sed -n 's/^ready //p' "$out")
    [[ -n $node ]] || fail "uhid_device.py $uniq made no node: $(cat "$out")"
    udevadm settle --timeout=30
    path=$(udevadm info --query=path "$node")
    udevadm info --query=all "$node" | tee "$WORK/udev-info-$uniq"
    tags=$(grep -E '^E: (CURRENT_)?TAGS=' "$WORK/udev-info-$uniq" || true)
    [[ $tags != *snap_* ]] || fail "$uniq ($path) got a snap tag: $tags"
    ! ls /run/udev/tags/snap_*/ 2>/dev/null | grep -qx "c$(majmin "$node")" \
      || fail "a snap tag index lists $uniq"
    # The FIDO ones are security tokens for udev (uaccess): only the rule's own tests kept them out.
    if [[ $descriptor = fido ]]; then
      grep -qx 'E: ID_SECURITY_TOKEN=1' "$WORK/udev-info-$uniq" || fail "$uniq is no security token"
    fi
    echo "$uniq: $node $path, no snap tag"
  done
  for pid in $(cat "$WORK/uhid-pids"); do kill "$pid"; done
  udevadm settle --timeout=30
  ! grep -vF " $DEVPATH $MAJMIN" "$HELPER_LOG" || fail "the helper was called for another device"
  # /dev/uhid stays root's, without a snap tag.
  udevadm info --query=all /dev/uhid | tee "$WORK/udev-info-uhid"
  ! grep -E '^E: (CURRENT_)?TAGS=.*snap_' "$WORK/udev-info-uhid" || fail "/dev/uhid got a snap tag"
  [[ $(stat -c '%U:%G %a' /dev/uhid) = "root:root 600" ]] || fail "/dev/uhid is $(stat -c '%U:%G %a' /dev/uhid)"
}
check other-uhid other_uhid

# fido2d stops: udev's "remove" runs the helper again, from the tags kept in udev's database.
stop_fido2d TERM; echo $? > "$WORK/stop-status"
udevadm settle --timeout=30
helper_remove() {
  (($(cat "$WORK/stop-status") == 0)) || fail "fido2d exited with status $(cat "$WORK/stop-status") on SIGTERM"
  cat "$HELPER_LOG"
  [[ $(helper_calls remove "$DEVPATH" "$MAJMIN" | tr '\n' ' ') = "1 1 1 " ]] \
    || fail "snap-device-helper was not called once with remove <tag> $DEVPATH $MAJMIN for each tag"
  local tag
  for tag in "${SNAP_TAGS[@]}"; do
    [[ ! -e /run/udev/tags/$tag/c$MAJMIN ]] || fail "/run/udev/tags/$tag/ still lists c$MAJMIN"
  done
}
check helper-remove helper_remove

# With snapd, its own rules file for a snap (70-snap.<snap>.rules, written while the snap has an
# interface that tags devices, u2f-devices among them) runs the helper for every device that
# carries the snap's tag, whichever rule set it. A stand-in for the Firefox snap's, in the form
# snapd writes (interfaces/udev/spec.go, TagDevice; one of u2f-devices' lines).
write_snapd_rules() {
  cat > /etc/udev/rules.d/70-snap.firefox.rules <<'RULES'
# This file is automatically generated.
# u2f-devices
# Yubico YubiKey
SUBSYSTEM=="hidraw", KERNEL=="hidraw*", ATTRS{idVendor}=="1050", ATTRS{idProduct}=="0113|0114|0115|0116|0120|0121|0200|0402|0403|0406|0407|0410", TAG+="snap_firefox_firefox"
TAG=="snap_firefox_firefox", SUBSYSTEM!="module", SUBSYSTEM!="subsystem", RUN+="/usr/lib/snapd/snap-device-helper $env{ACTION} snap_firefox_firefox $devpath $major:$minor"
RULES
}

# Our rule without its RUN lines: snapd's rule alone hands the node to a running Firefox.
snapd_rule_acts_on_our_tag() {
  write_snapd_rules
  sed '/RUN+=/d' "$REPO/dist/udev/69-fido2d-snap.rules" > "$RULES_DIR/69-fido2d-snap.rules"
  udevadm control --reload
  : > "$HELPER_LOG"
  start_fido2d --presence deny
  udevadm settle --timeout=30
  local devpath mm
  devpath=$(udevadm info --query=path "$HIDRAW")
  mm=$(majmin "$HIDRAW")
  stop_fido2d TERM
  udevadm settle --timeout=30
  cat "$HELPER_LOG"
  [[ $(cat "$HELPER_LOG") = "add snap_firefox_firefox $devpath $mm
remove snap_firefox_firefox $devpath $mm" ]] || fail "snapd's rule did not run the helper for our tag on add and remove"
}
check snapd-rule-acts-on-our-tag snapd_rule_acts_on_our_tag

# Our whole rule beside snapd's: the helper runs for every tag on add and remove, for Firefox's
# from both files (systemd 252 runs the same command twice; snap-device-helper's allow and deny
# are idempotent).
snapd_rule_and_ours() {
  install -m 644 "$REPO/dist/udev/69-fido2d-snap.rules" "$RULES_DIR/69-fido2d-snap.rules"
  udevadm control --reload
  : > "$HELPER_LOG"
  start_fido2d --presence deny
  udevadm settle --timeout=30
  local devpath mm action counts
  devpath=$(udevadm info --query=path "$HIDRAW")
  mm=$(majmin "$HIDRAW")
  stop_fido2d TERM
  udevadm settle --timeout=30
  cat "$HELPER_LOG"
  ! grep -vF " $devpath $mm" "$HELPER_LOG" || fail "the helper was called for another device"
  for action in add remove; do
    counts=$(helper_calls "$action" "$devpath" "$mm" | tr '\n' ' ')
    echo "$action calls for ${SNAP_TAGS[*]}: $counts"
    [[ $counts =~ ^[12]\ 1\ 1\ $ ]] || fail "not one or two $action calls for Firefox's tag and one for the others"
  done
}
check snapd-rule-and-ours snapd_rule_and_ours
rm -f /etc/udev/rules.d/70-snap.firefox.rules
udevadm control --reload

# The package's maintainer scripts (dist/debian/): postinst reloads udev's rules and triggers
# the key, so a key that runs before the package is installed gets its tags at once; postrm
# takes them away again (udev's tag index keeps the node, but snap-confine admits only devices
# whose tag is current). Run here as dpkg runs them, after it unpacked or removed the rule; in
# this guest, deb-systemd-helper refuses to run outside dpkg and no systemd runs.
current_tags() {
  udevadm info --query=property --property=CURRENT_TAGS --value "$1"
}
maintainer_scripts() {
  rm -f "$RULES_DIR/69-fido2d-snap.rules"
  udevadm control --reload
  start_fido2d --presence deny
  udevadm settle --timeout=30
  local devpath mm tags tag
  devpath=$(udevadm info --query=path "$HIDRAW")
  mm=$(majmin "$HIDRAW")
  tags=$(current_tags "$HIDRAW")
  echo "without the rule: CURRENT_TAGS=$tags"
  [[ $tags != *snap_* ]] || fail "snap tags without the rule"
  : > "$HELPER_LOG"
  install -m 644 "$REPO/dist/udev/69-fido2d-snap.rules" "$RULES_DIR/69-fido2d-snap.rules"
  sh -e "$REPO/dist/debian/postinst" configure
  udevadm settle --timeout=30
  tags=$(current_tags "$HIDRAW")
  echo "after postinst configure: CURRENT_TAGS=$tags"
  cat "$HELPER_LOG"
  for tag in "${SNAP_TAGS[@]}"; do
    [[ $tags = *":$tag:"* ]] || fail "postinst: $tag is not in CURRENT_TAGS=$tags"
    grep -qxF "change $tag $devpath $mm" "$HELPER_LOG" || fail "postinst: no helper call for $tag"
  done
  rm "$RULES_DIR/69-fido2d-snap.rules"
  sh -e "$REPO/dist/debian/postrm" remove
  udevadm settle --timeout=30
  tags=$(current_tags "$HIDRAW")
  echo "after postrm remove: CURRENT_TAGS=$tags"
  ls /run/udev/tags/snap_firefox_firefox/ 2>&1 || true
  [[ $tags != *snap_* ]] || fail "postrm: snap tags are still current"
  stop_fido2d TERM
  udevadm settle --timeout=30
}
check maintainer-scripts maintainer_scripts
install -m 644 "$REPO/dist/udev/69-fido2d-snap.rules" "$RULES_DIR/69-fido2d-snap.rules"
udevadm control --reload

# AppArmor, as the snaps confine the browsers: profiles made of snapd's rules
# (tests/vm/apparmor/), loaded into the guest kernel (Debian's enables AppArmor by default).
if ! start_fido2d --presence deny > "$LOGS/$GROUP.daemon-apparmor.log" 2>&1; then
  check daemon-apparmor fail "fido2d did not start: $(tail -n 2 "$LOGS/$GROUP.daemon-apparmor.log")"
  return 0
fi
udevadm settle --timeout=30
echo "$HIDRAW" > "$WORK/apparmor-node"

apparmor_load() {
  [[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) = Y ]] \
    || fail "AppArmor is not enabled in the guest kernel ($(cat /proc/cmdline))"
  mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security
  cat /sys/kernel/security/lsm; echo
  apparmor_parser --version | head -n 1
  apparmor_parser -r -T -I "$AA_DIR" "$AA_DIR/profiles"
  local profile
  for profile in "${AA_PROFILES[@]}"; do
    grep -x "$profile (enforce)" /sys/kernel/security/apparmor/profiles || fail "$profile is not loaded in enforce mode"
  done
}
check apparmor-load apparmor_load || return 0

# What the last checks denied, from the kernel's log.
apparmor_denials() {
  dmesg | grep -F 'apparmor="DENIED"' | grep -F "profile=\"$1\"" || true
}

# (a) Firefox's way, in effect: libfido2 opens the node and reads its report descriptor with an
# ioctl; u2f-devices' /dev/hidraw* rule is all it takes, without hardware-observe.
apparmor_fido2_token_info() {
  local node
  node=$(cat "$WORK/apparmor-node")
  aa-exec -p fido2d-test-snap-browser -- cat /proc/self/attr/current | tr -d '\0' | tee "$WORK/aa-current"
  grep -qx 'fido2d-test-snap-browser (enforce)' "$WORK/aa-current" || fail "aa-exec did not confine"
  dmesg -C
  aa-exec -p fido2d-test-snap-browser -- fido2-token -I "$node" | tee "$WORK/aa-info" \
    || { apparmor_denials fido2d-test-snap-browser; fail "fido2-token -I $node failed under the profile"; }
  grep -Eq '^version strings: .*FIDO_2_0' "$WORK/aa-info" || fail "no FIDO_2_0 from fido2-token -I"
  apparmor_denials fido2d-test-snap-browser
}
check apparmor-fido2-token-I apparmor_fido2_token_info

# The same library's enumeration through libudev (sysfs, /run/udev/data), as Firefox finds keys.
apparmor_fido2_token_list() {
  local node
  node=$(cat "$WORK/apparmor-node")
  dmesg -C
  aa-exec -p fido2d-test-snap-browser -- fido2-token -L | tee "$WORK/aa-list"
  apparmor_denials fido2d-test-snap-browser
  grep -F "$node: vendor=0x1209, product=0x0001" "$WORK/aa-list" \
    || fail "fido2-token -L under the profile does not list $node"
}
check apparmor-fido2-token-L apparmor_fido2_token_list

# (b) Chromium's way: the report descriptor from the parent HID device's sysfs directory, which
# for a uhid device is under /sys/devices/virtual/misc/uhid/: u2f-devices allows only USB and
# I2C parents, hardware-observe's /sys/devices/** read allows it.
apparmor_report_descriptor() {
  local node parent rc=0
  node=$(cat "$WORK/apparmor-node")
  parent=$(realpath "/sys/class/hidraw/${node#/dev/}/device")
  echo "parent: $parent"
  dmesg -C
  aa-exec -p fido2d-test-snap-browser -- od -An -tx1 -v "$parent/report_descriptor" \
    > "$WORK/aa-rd-denied" 2>&1 || rc=$?
  cat "$WORK/aa-rd-denied"
  apparmor_denials fido2d-test-snap-browser | tee "$WORK/aa-rd-denials"
  ((rc != 0)) || fail "the report descriptor was readable without hardware-observe"
  grep -q 'Permission denied' "$WORK/aa-rd-denied" || fail "not a permission error"
  grep -qF "name=\"$parent/report_descriptor\"" "$WORK/aa-rd-denials" \
    || fail "AppArmor logged no denial of $parent/report_descriptor"
  aa-exec -p fido2d-test-snap-browser-hardware-observe -- od -An -tx1 -v "$parent/report_descriptor" \
    | tee "$WORK/aa-rd"
  [[ $(tr -d ' \n' < "$WORK/aa-rd") = 06d0f10901a1010920150026ff007508954081020921150026ff00750895409102c0 ]] \
    || fail "with hardware-observe: not the FIDO report descriptor"
}
check apparmor-report-descriptor apparmor_report_descriptor

# The rule as udev reads it: `udevadm verify` where this udev has it (systemd 254+), else
# `udevadm test` on fido2d's node, which logs each complaint about a rules file as
# "<file>:<line> ..." (a broken file beside it shows that it does). The last check: in systemd
# 252, udevadm test rewrites the node's udev database entry, and cannot run fido_id ("Failed to
# get current device from environment"), so our rule, which needs ID_FIDO_TOKEN, does not match
# there; the checks above show what the rule does under a real udevd.
udevadm_test() {
  local node=$1 broken=/run/udev/rules.d/68-fido2d-test-broken.rules
  if udevadm verify --help > /dev/null 2>&1; then
    udevadm verify "$RULES_DIR/69-fido2d-snap.rules"
  else
    echo "udevadm $(udevadm --version) has no verify: udevadm test only"
  fi
  mkdir -p /run/udev/rules.d
  printf '%s\n' 'SUBSYSTEM=="hidraw", ENV{X}!"1", TAG+="x"' 'GOTO="nowhere"' > "$broken"
  udevadm test --action=add "$(udevadm info --query=path "$node")" > "$WORK/udevadm-test" 2>&1 || true
  rm -f "$broken"
  cat "$WORK/udevadm-test"
  grep -q "Reading rules file: $RULES_DIR/69-fido2d-snap.rules" "$WORK/udevadm-test" \
    || fail "udevadm test did not read the rule"
  grep -q "^$broken:" "$WORK/udevadm-test" || fail "udevadm test did not complain about $broken"
  ! grep "^$RULES_DIR/69-fido2d-snap.rules:" "$WORK/udevadm-test" \
    || fail "udevadm test complains about the rule"
}
check udevadm-test udevadm_test "$(cat "$WORK/apparmor-node")"
