# The TPM backend through a real kernel: the guest's tpm_tis driver and /dev/tpmrm0 (the
# kernel's resource manager), backed by swtpm on the host (qemu -tpmdev emulator). libfido2
# makes and verifies credentials whose keys the TPM created, across a restart of the daemon.

tpm_device() {
  [[ -c /dev/tpmrm0 ]] || fail "no /dev/tpmrm0: is the tpm-tis device attached?"
  ls -l /dev/tpm0 /dev/tpmrm0
  [[ $(cat /sys/class/tpm/tpm0/tpm_version_major) = 2 ]] || fail "not a TPM 2.0"
}
check tpm-device tpm_device || return 0

# The default TCTI is device:/dev/tpmrm0; auto picks the TPM for a new state directory.
check_daemon --keystore auto --presence auto-approve || return 0

startup_log() {
  cat "$FIDO2D_LOGFILE"
  grep -F 'keystore: tpm (manufacturer IBM, vendor "SW TPM"' "$FIDO2D_LOGFILE" \
    || fail "the daemon does not use the TPM"
  grep -F 'via device:/dev/tpmrm0)' "$FIDO2D_LOGFILE" || fail "not through /dev/tpmrm0"
  [[ -f $WORK/state/master.tpm && ! -e $WORK/state/master.key ]] \
    || fail "no TPM-sealed master secret (or a file one beside it)"
}
check startup-log startup_log

es256_only() {
  fido2-token -I "$HIDRAW" | tee "$WORK/info"
  grep -Eq '^algorithms: .*es256' "$WORK/info" || fail "getInfo does not list ES256"
  ! grep -Eq '^algorithms: .*eddsa' "$WORK/info" || fail "getInfo lists EdDSA, which the TPM lacks"
}
check getinfo-es256-only es256_only

# make NAME [FLAGS...]: fido2-cred -M then -V; leaves $WORK/NAME.cred (id, PEM key).
make() {
  local name=$1
  shift
  {
    head -c 32 /dev/urandom | base64
    echo "$name.tpm.fido2d.test"
    echo "user-$name"
    head -c 16 /dev/urandom | base64
  } > "$WORK/$name.param"
  fido2-cred -M -q "$@" -i "$WORK/$name.param" -o "$WORK/$name.made" "$HIDRAW" es256 \
    || fail "fido2-cred -M failed"
  fido2-cred -V -i "$WORK/$name.made" -o "$WORK/$name.cred" es256 \
    || fail "fido2-cred -V rejected the attestation"
  cat "$WORK/$name.cred"
}

# assert NAME [-r]: fido2-assert -G -p then -V -p with the key fido2-cred verified.
assert() {
  local name=$1
  shift
  {
    head -c 32 /dev/urandom | base64
    echo "$name.tpm.fido2d.test"
    [[ " $* " = *" -r "* ]] || head -n 1 "$WORK/$name.cred"
  } > "$WORK/$name.aparam"
  fido2-assert -G -p "$@" -i "$WORK/$name.aparam" -o "$WORK/$name.assert" "$HIDRAW" \
    || fail "fido2-assert -G failed"
  tail -n +2 "$WORK/$name.cred" > "$WORK/$name.pem"
  head -n 4 "$WORK/$name.assert" | fido2-assert -V -p "$WORK/$name.pem" es256 \
    || fail "fido2-assert -V rejected the signature"
  echo "assertion verified"
}

check cred-es256 make plain
check assert-es256 assert plain
check cred-es256-discoverable make resident -r
check assert-es256-discoverable assert resident -r
check cred-u2f make u2f -u
check assert-u2f assert u2f -u

eddsa_refused() {
  {
    head -c 32 /dev/urandom | base64
    echo "eddsa.tpm.fido2d.test"
    echo "user-eddsa"
    head -c 16 /dev/urandom | base64
  } > "$WORK/eddsa.param"
  if fido2-cred -M -q -i "$WORK/eddsa.param" "$HIDRAW" eddsa > "$WORK/eddsa.out" 2>&1; then
    fail "the TPM keystore made an EdDSA credential"
  fi
  cat "$WORK/eddsa.out"
  grep -q 'FIDO_ERR_UNSUPPORTED_ALGORITHM' "$WORK/eddsa.out" || fail "not UNSUPPORTED_ALGORITHM"
}
check eddsa-unsupported eddsa_refused

# A new daemon on the same state directory and TPM signs with every credential.
stop_fido2d TERM
check_daemon --keystore auto --presence auto-approve || return 0
followed() {
  grep -F 'because the state directory holds TPM credentials (master.tpm)' "$FIDO2D_LOGFILE" \
    || fail "the restarted daemon did not follow the state directory to the TPM"
}
check restart-follows-the-state-directory followed
check assert-es256-after-restart assert plain
check assert-es256-discoverable-after-restart assert resident -r
check assert-u2f-after-restart assert u2f -u

# A TPM the daemon may not open is an error to fix, never a reason to use the file instead.
tpm_no_permission() {
  local state=$WORK/nobody-state rc=0
  mkdir -p "$state"
  chown 65534:65534 "$state"
  chmod 700 "$state"
  setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    "$FIDO2D" --transport udp --udp-port 0 --state-dir "$state" --presence deny \
    > "$WORK/tpm-no-perm.out" 2>&1 || rc=$?
  cat "$WORK/tpm-no-perm.out"
  ((rc != 0)) || fail "exit status 0 without access to the TPM"
  grep ERROR "$WORK/tpm-no-perm.out" \
    | grep -q 'cannot open the TPM at device:/dev/tpmrm0: Permission denied' \
    || fail "no 'cannot open the TPM' error"
  [[ -z $(ls -A "$state") ]] || fail "a keystore was created anyway: $(ls -A "$state")"
}
check error-tpm-no-permission tpm_no_permission
