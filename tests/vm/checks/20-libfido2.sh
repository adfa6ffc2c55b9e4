# libfido2's own tools (fido2-cred, fido2-assert) make and verify credentials and assertions
# through /dev/hidraw*: CTAP2 with ES256 and EdDSA, discoverable and not, and CTAP1/U2F.

check_daemon --presence auto-approve || return 0

# make_and_verify NAME TYPE [FLAGS...]: fido2-cred -M, then -V (attestation and the key);
# leaves $WORK/NAME.cred (credential id, PEM key) and $WORK/NAME.rp.
make_and_verify() {
  local name=$1 type=$2
  shift 2
  local rp="$name.fido2d.test"
  {
    head -c 32 /dev/urandom | base64
    echo "$rp"
    echo "user-$name"
    head -c 16 /dev/urandom | base64
  } > "$WORK/$name.param"
  echo "$rp" > "$WORK/$name.rp"
  fido2-cred -M -q "$@" -i "$WORK/$name.param" -o "$WORK/$name.made" "$HIDRAW" "$type" \
    || fail "fido2-cred -M failed"
  cat "$WORK/$name.made"
  local fmt
  fmt=$(sed -n 3p "$WORK/$name.made")
  fido2-cred -V -i "$WORK/$name.made" -o "$WORK/$name.cred" "$type" \
    || fail "fido2-cred -V rejected the $fmt attestation"
  cat "$WORK/$name.cred"
  grep -q 'BEGIN PUBLIC KEY' "$WORK/$name.cred" || fail "no public key"
  echo "attestation format $fmt verified"
}

# assert_and_verify NAME TYPE [FLAGS...]: fido2-assert -G -p (presence), then -V -p with the
# key from make_and_verify. With -r, no credential id is given (a discoverable credential).
assert_and_verify() {
  local name=$1 type=$2
  shift 2
  {
    head -c 32 /dev/urandom | base64
    cat "$WORK/$name.rp"
    [[ " $* " = *" -r "* ]] || head -n 1 "$WORK/$name.cred"
  } > "$WORK/$name.aparam"
  fido2-assert -G -p "$@" -i "$WORK/$name.aparam" -o "$WORK/$name.assert" "$HIDRAW" \
    || fail "fido2-assert -G failed"
  cat "$WORK/$name.assert"
  tail -n +2 "$WORK/$name.cred" > "$WORK/$name.pem"
  head -n 4 "$WORK/$name.assert" | fido2-assert -V -p "$WORK/$name.pem" "$type" \
    || fail "fido2-assert -V rejected the signature"
  echo "assertion verified"
}

check cred-es256 make_and_verify es256 es256
check assert-es256 assert_and_verify es256 es256
check cred-eddsa make_and_verify eddsa eddsa
check assert-eddsa assert_and_verify eddsa eddsa
check cred-es256-discoverable make_and_verify rk-es256 es256 -r
check assert-es256-discoverable assert_and_verify rk-es256 es256 -r
check cred-eddsa-discoverable make_and_verify rk-eddsa eddsa -r
check assert-eddsa-discoverable assert_and_verify rk-eddsa eddsa -r

u2f_fmt() {
  [[ $(sed -n 3p "$WORK/u2f.made") = fido-u2f ]] || fail "format $(sed -n 3p "$WORK/u2f.made"), want fido-u2f"
}
check cred-u2f make_and_verify u2f es256 -u
check cred-u2f-format u2f_fmt
check assert-u2f assert_and_verify u2f es256 -u

# A credential of another RP is not ours: libfido2 reports no credentials.
foreign_rp() {
  {
    head -c 32 /dev/urandom | base64
    echo "other.fido2d.test"
    head -n 1 "$WORK/es256.cred"
  } > "$WORK/foreign.aparam"
  if fido2-assert -G -p -i "$WORK/foreign.aparam" "$HIDRAW" > "$WORK/foreign.out" 2>&1; then
    fail "an assertion for another RP's credential was made"
  fi
  cat "$WORK/foreign.out"
  grep -q 'FIDO_ERR_NO_CREDENTIALS' "$WORK/foreign.out" || fail "not FIDO_ERR_NO_CREDENTIALS"
}
check foreign-rp-no-credentials foreign_rp
