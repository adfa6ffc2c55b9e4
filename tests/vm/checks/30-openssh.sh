# OpenSSH security-key keys (its built-in libfido2 provider) on the virtual key: ecdsa-sk and
# ed25519-sk, plain and resident, each used for an SSH signature (ssh-keygen -Y sign) that
# ssh-keygen -Y verify accepts for the message and refuses for a changed one.

check_daemon --presence auto-approve || return 0
echo "a message signed by the fido2d virtual key" > "$WORK/message"

# keygen NAME TYPE [ssh-keygen -O options...]
keygen() {
  local name=$1 type=$2
  shift 2
  ssh-keygen -q -t "$type" -f "$WORK/$name" -N '' -C "$name@fido2d.test" "$@" < /dev/null \
    || fail "ssh-keygen -t $type failed"
  cat "$WORK/$name.pub"
  grep -q "^sk-" "$WORK/$name.pub" || fail "not a security-key public key"
}

sign_and_verify() {
  local name=$1
  rm -f "$WORK/message.sig"
  ssh-keygen -Y sign -f "$WORK/$name" -n file "$WORK/message" < /dev/null || fail "ssh-keygen -Y sign failed"
  echo "$name@fido2d.test namespaces=\"file\" $(cut -d' ' -f1,2 "$WORK/$name.pub")" > "$WORK/allowed_signers"
  ssh-keygen -Y verify -f "$WORK/allowed_signers" -I "$name@fido2d.test" -n file \
    -s "$WORK/message.sig" < "$WORK/message" || fail "ssh-keygen -Y verify rejected the signature"
  if echo "a changed message" | ssh-keygen -Y verify -f "$WORK/allowed_signers" \
    -I "$name@fido2d.test" -n file -s "$WORK/message.sig"; then
    fail "the signature also verified for another message"
  fi
  echo "signature verified; a changed message is refused"
}

check keygen-ecdsa-sk keygen ecdsa ecdsa-sk
check sign-ecdsa-sk sign_and_verify ecdsa
check keygen-ed25519-sk keygen ed25519 ed25519-sk
check sign-ed25519-sk sign_and_verify ed25519
# Resident keys, each under its own application so the second is not taken for the first.
check keygen-ecdsa-sk-resident keygen ecdsa-rk ecdsa-sk -O resident -O application=ssh:fido2d-ecdsa
check sign-ecdsa-sk-resident sign_and_verify ecdsa-rk
check keygen-ed25519-sk-resident keygen ed25519-rk ed25519-sk -O resident -O application=ssh:fido2d-ed25519
check sign-ed25519-sk-resident sign_and_verify ed25519-rk
