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
