# authenticatorReset as on a hardware key: only just after the key is plugged in. The virtual
# key is "plugged in" at its first appearance in this boot (the kernel's boot id, recorded in
# the state directory), not at every start of the daemon; `fido2ctl reset` replugs it through
# the daemon (the owner's gesture, the uhid device made anew), then resets it.

reset_once_per_boot() {
  stop_fido2d || true
  rm -rf "$WORK/state"
  # The first appearance in this boot: a reset is allowed at once (libfido2's own reset).
  start_fido2d --presence auto-approve
  fido2-token -R "$HIDRAW" || fail "the first start in this boot refused a reset"
  grep -q '^boot_id=' "$WORK/state/boot" || fail "no boot record in the state directory"

  # A restart in the same boot is not a power-up: refused, as on a key that stayed plugged in.
  stop_fido2d
  start_fido2d --presence auto-approve
  local rc=0
  fido2-token -R "$HIDRAW" > "$WORK/late-reset.out" 2>&1 || rc=$?
  cat "$WORK/late-reset.out"
  ((rc != 0)) || fail "a restarted daemon allowed a reset"
  grep -qi 'not.allowed' "$WORK/late-reset.out" || fail "not refused with NOT_ALLOWED"

  # fido2ctl replugs the key first: the device disappears and comes back, then the reset works.
  local before=$HIDRAW
  "$FIDO2CTL" reset --yes > "$WORK/fido2ctl-reset.out" 2>&1 \
    || { cat "$WORK/fido2ctl-reset.out"; fail "fido2ctl reset failed"; }
  cat "$WORK/fido2ctl-reset.out"
  grep -q 'the key was replugged' "$WORK/fido2ctl-reset.out" || fail "fido2ctl did not replug"
  grep -q 'The key is reset' "$WORK/fido2ctl-reset.out" || fail "no reset after the replug"
  grep -q 'replug: the virtual key is removed and made anew' "$FIDO2D_LOGFILE" \
    || fail "the daemon did not make the key anew"
  grep -q 'virtual security key removed' "$FIDO2D_LOGFILE" || fail "no UHID_DESTROY on the replug"
  echo "replugged (the key was $before before)"
  stop_fido2d
}
check reset-once-per-boot reset_once_per_boot
