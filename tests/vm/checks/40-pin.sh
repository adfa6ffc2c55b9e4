# clientPIN, credential management, authenticatorConfig and large blobs through /dev/hidraw*
# with libfido2's fido2-token / fido2-cred, and a PIN-verified OpenSSH key (ecdsa-sk,
# verify-required). The PIN is typed at each tool's own prompt on a terminal (guest/typed.py),
# as a person does it: libfido2 and OpenSSH read it from /dev/tty, not from a pipe.

check_daemon --presence auto-approve || return 0
TYPED=("$PYTHON" "$REPO/tests/vm/guest/typed.py")
PIN=246810
NEW_PIN=13579135
RP=pin.fido2d.test

info_without_pin() {
  fido2-token -I "$HIDRAW" | tee "$WORK/info0"
  grep -q '^options:.*noclientPin' "$WORK/info0" || fail "clientPin not reported as supported-but-unset"
  grep -q '^options:.*credMgmt' "$WORK/info0" || fail "no credMgmt option"
  grep -q '^options:.*pinUvAuthToken' "$WORK/info0" || fail "no pinUvAuthToken option"
  grep -q '^pin protocols: 2, 1' "$WORK/info0" || fail "pin protocols not 2, 1"
  grep -q '^pin retries: 8' "$WORK/info0" || fail "pin retries not 8"
  grep -q '^minpinlen: 4' "$WORK/info0" || fail "minpinlen not 4"
}

set_pin() {
  "${TYPED[@]}" "$PIN" "$PIN" -- fido2-token -S "$HIDRAW" || fail "fido2-token -S failed"
  fido2-token -I "$HIDRAW" | tee "$WORK/info1"
  grep -q '^options:.*[ ,]clientPin' "$WORK/info1" || fail "clientPin not set after -S"
}

change_pin() {
  "${TYPED[@]}" "$PIN" "$NEW_PIN" "$NEW_PIN" -- fido2-token -C "$HIDRAW" || fail "fido2-token -C failed"
}

wrong_pin_counts() {
  if "${TYPED[@]}" "$PIN" -- fido2-token -L -r "$HIDRAW" > "$WORK/wrong.out" 2>&1; then
    fail "the old PIN still works"
  fi
  cat "$WORK/wrong.out"
  grep -q 'FIDO_ERR_PIN_INVALID' "$WORK/wrong.out" || fail "not FIDO_ERR_PIN_INVALID"
  fido2-token -I "$HIDRAW" | grep '^pin retries' | tee "$WORK/retries"
  grep -q '^pin retries: 7' "$WORK/retries" || fail "a wrong PIN did not cost a retry"
}

make_uv_credential() {
  {
    head -c 32 /dev/urandom | base64
    echo "$RP"
    echo "pin-user"
    head -c 16 /dev/urandom | base64
  } > "$WORK/rk.param"
  "${TYPED[@]}" "$NEW_PIN" -- fido2-cred -M -r -v -b -i "$WORK/rk.param" -o "$WORK/rk.made" "$HIDRAW" es256 \
    || fail "fido2-cred -M -r -v failed"
  sed -n 5p "$WORK/rk.made" > "$WORK/rk.id"
  # Self attestation has no x5c line, and fido2-cred -V would read the largeBlobKey line that
  # -b adds in its place: verify the first six lines.
  head -n 6 "$WORK/rk.made" | fido2-cred -V -v -o "$WORK/rk.cred" es256 || fail "fido2-cred -V -v (UV) rejected it"
  fido2-token -I "$HIDRAW" | grep '^pin retries: 8' || fail "the right PIN did not restore the retries"
}

list_rps() {
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -L -r "$HIDRAW" | tee "$WORK/rps"
  grep -q " $RP\$" "$WORK/rps" || fail "$RP not listed"
}

list_credentials() {
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -L -k "$RP" "$HIDRAW" | tee "$WORK/creds"
  grep -qF "$(cat "$WORK/rk.id")" "$WORK/creds" || fail "the credential is not listed"
}

update_user() {
  local user_id
  user_id=$(sed -n 4p "$WORK/rk.param")
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -S -c -i "$(cat "$WORK/rk.id")" -k "$user_id" -n renamed \
    -p "Renamed User" "$HIDRAW" || fail "fido2-token -S -c failed"
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -L -k "$RP" "$HIDRAW" | tee "$WORK/creds2"
  grep -q 'Renamed User' "$WORK/creds2" || fail "the new display name is not listed"
}

large_blob() {
  head -c 300 /dev/urandom > "$WORK/blob.in"
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -S -b -n "$RP" "$WORK/blob.in" "$HIDRAW" \
    || fail "fido2-token -S -b failed"
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -G -b -n "$RP" "$WORK/blob.out" "$HIDRAW" \
    || fail "fido2-token -G -b failed"
  cmp "$WORK/blob.in" "$WORK/blob.out" || fail "the blob read back differs"
}

delete_credential() {
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -D -i "$(cat "$WORK/rk.id")" "$HIDRAW" || fail "fido2-token -D -i failed"
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -L -k "$RP" "$HIDRAW" > "$WORK/creds3" 2>&1 || true
  cat "$WORK/creds3"
  if grep -qF "$(cat "$WORK/rk.id")" "$WORK/creds3"; then fail "still listed after -D"; fi
}

min_pin_length() {
  "${TYPED[@]}" "$NEW_PIN" -- fido2-token -S -l 8 "$HIDRAW" || fail "fido2-token -S -l failed"
  fido2-token -I "$HIDRAW" | tee "$WORK/info2"
  grep -q '^minpinlen: 8' "$WORK/info2" || fail "minpinlen not 8"
  grep -q '^pin change required: false' "$WORK/info2" || fail "an 8-digit PIN needs no change"
}

check info-without-pin info_without_pin
check set-pin set_pin
check change-pin change_pin
check wrong-pin-counts wrong_pin_counts
check make-uv-credential make_uv_credential
check list-rps list_rps
check list-credentials list_credentials
check update-user update_user
check large-blob large_blob
check delete-credential delete_credential
check min-pin-length min_pin_length

# OpenSSH: a key that needs the PIN for every signature.
echo "a message signed with a PIN-verified key" > "$WORK/message"

ssh_keygen_verify_required() {
  "${TYPED[@]}" "$NEW_PIN" -- ssh-keygen -q -t ecdsa-sk -O verify-required -f "$WORK/vr" -N '' -C vr@fido2d.test \
    || fail "ssh-keygen -t ecdsa-sk -O verify-required failed"
  grep -q '^sk-ecdsa-sha2-nistp256@openssh.com ' "$WORK/vr.pub" || fail "not an sk-ecdsa key"
}

ssh_sign_with_pin() {
  "${TYPED[@]}" "$NEW_PIN" -- ssh-keygen -Y sign -f "$WORK/vr" -n file "$WORK/message" \
    || fail "ssh-keygen -Y sign failed"
  echo "vr@fido2d.test namespaces=\"file\" $(cut -d' ' -f1,2 "$WORK/vr.pub")" > "$WORK/allowed"
  ssh-keygen -Y verify -f "$WORK/allowed" -I vr@fido2d.test -n file -s "$WORK/message.sig" \
    < "$WORK/message" || fail "ssh-keygen -Y verify rejected the signature"
  # The security-key signature inside the SSHSIG carries the authenticator's flags: the user
  # verified bit (0x04) must be set, as sshd's verify-required checks it.
  "$PYTHON" - "$WORK/message.sig" <<'PY' || fail "the signature is not user-verified"
import base64, struct, sys
text = open(sys.argv[1]).read().split("-----")[2]
blob = base64.b64decode("".join(text.split()))
assert blob[:6] == b"SSHSIG", "not an SSH signature"
pos = 10  # magic + version
def string():
    global pos
    (n,) = struct.unpack(">I", blob[pos:pos + 4])
    pos += 4 + n
    return blob[pos - n:pos]
for _ in range(4):  # public key, namespace, reserved, hash algorithm
    string()
sig = string()
pos, blob = 0, sig
kind = string()
string()  # the ECDSA signature
flags, counter = struct.unpack(">BI", blob[pos:pos + 5])
print(f"{kind.decode()}: flags 0x{flags:02x}, counter {counter}")
sys.exit(0 if flags & 0x05 == 0x05 else 1)
PY
}

ssh_wrong_pin_refused() {
  rm -f "$WORK/message.sig"
  if "${TYPED[@]}" 00000000 -- ssh-keygen -Y sign -f "$WORK/vr" -n file "$WORK/message"; then
    fail "signed with a wrong PIN"
  fi
  [[ ! -e $WORK/message.sig ]] || fail "a signature was written"
}

check ssh-keygen-verify-required ssh_keygen_verify_required
check ssh-sign-with-pin ssh_sign_with_pin
check ssh-wrong-pin-refused ssh_wrong_pin_refused
