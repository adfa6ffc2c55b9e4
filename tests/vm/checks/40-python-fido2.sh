# python-fido2's own client stack (CtapHidDevice over its Linux hidraw connection, Ctap2, Ctap1,
# Fido2Client) runs the ceremonies of tests/e2e/ceremonies.py against the virtual key, and its
# relying-party side verifies every attestation and assertion. Each ceremony is one result.

check_daemon --presence auto-approve || return 0

ceremonies() {
  PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$REPO/tests/e2e/ceremonies.py" "$HIDRAW" > "$WORK/ceremonies.out" 2> "$WORK/ceremonies.err"
  local rc=$?
  cat "$WORK/ceremonies.out"
  cat "$WORK/ceremonies.err" >&2
  return "$rc"
}
check ceremonies ceremonies
# One result line per ceremony, as python-fido2 saw it.
sed -n 's/^\(PASS\|FAIL\) \(.*\)$/\1 python-fido2\/\2/p' "$WORK/ceremonies.out" >> "$RESULTS"
sed -n 's/^\(PASS\|FAIL\) \(.*\)$/\1 python-fido2\/\2/p' "$WORK/ceremonies.out"

# Two programs on one key, through the kernel (tests/e2e/strict_ctap.py): two python-fido2
# clients, each with its own hidraw handle and CTAPHID channel. What one began
# (getNextAssertion, a credential enumeration, its PIN token) the other cannot continue, and
# hmac-secret without presence is refused. On a fresh key: the script sets a PIN.
stop_fido2d
rm -rf "$WORK/state"
check_daemon --presence auto-approve || return 0
two_channels() {
  PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$REPO/tests/e2e/strict_ctap.py" "$HIDRAW" > "$WORK/strict.out" 2> "$WORK/strict.err"
  local rc=$?
  cat "$WORK/strict.out"
  cat "$WORK/strict.err" >&2
  return "$rc"
}
check two-channels two_channels
