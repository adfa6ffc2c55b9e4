# group-timeout: 300
# pam_u2f end to end through the real kernel's hidraw: pamu2fcfg registers the key for a test
# user (pam-u2f 1.1.0's pamu2fcfg cannot check self attestation, the only kind fido2d gives; the
# same registration is then made with libfido2's fido2-cred, see below), and pamtester runs a PAM service of the guest's own (/etc/pam.d in the tmpfs overlay)
# made of pam_u2f alone. A touch authenticates; a refused touch, no touch within the daemon's
# presence timeout and a user without a registered key are PAM failures; with
# pinverification=1 pam_u2f asks for the PIN (pamtester reads it from stdin) and a wrong PIN is
# a failure that costs a retry; with `--presence fingerprint` the touch is the owner's finger
# on fprintd's virtual reader and a stranger's finger is a failure. Presence is answered as a
# person at fido2d's terminal would (`--presence terminal`, a FIFO on its stdin): "y" or "n"
# once the daemon asks.

PAM_USER=fido2d-pam
STRANGER=fido2d-pam-stranger
ORIGIN=pam://fido2d-vm
AUTHFILE=$WORK/u2f_keys
PIN=864200
TYPED=("$PYTHON" "$REPO/tests/vm/guest/typed.py")

for user in "$PAM_USER" "$STRANGER"; do
  id "$user" > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
done

# Two services: pam_u2f as the whole "auth" stack, without and with pinverification=1.
# (No "debug": it turns on libfido2's dump of every HID frame, PIN protocol messages included.)
u2f_opts="authfile=$AUTHFILE origin=$ORIGIN appid=$ORIGIN cue authpending_file="
mkdir -p /etc/pam.d
cat > /etc/pam.d/fido2d-u2f << EOF
auth    required pam_u2f.so $u2f_opts
account required pam_permit.so
EOF
cat > /etc/pam.d/fido2d-u2f-pin << EOF
auth    required pam_u2f.so $u2f_opts pinverification=1
account required pam_permit.so
EOF

PRESENCE=$WORK/presence
mkfifo "$PRESENCE"
# Held open read-write here, so fido2d never reads end-of-file between answers.
exec 7<> "$PRESENCE"
FIDO2D_STDIN=$PRESENCE check_daemon --presence terminal --presence-timeout 8 || return 0

# pam SERVICE USER NAME [ANSWER...]: pamtester SERVICE USER authenticate (its stdin
# $WORK/NAME.stdin if it exists, else /dev/null) while the daemon's presence prompts get the
# ANSWERs; its output in $WORK/NAME.out, its exit status returned. Fails the check if a prompt
# that should be answered never came.
pam() {
  local service=$1 user=$2 name=$3 answerer='' rc=0 stdin=/dev/null
  shift 3
  [[ -e $WORK/$name.stdin ]] && stdin=$WORK/$name.stdin
  if (($#)); then
    answer_presence "$PRESENCE" "$@"
    answerer=$PRESENCE_ANSWERER
  fi
  pamtester -v "$service" "$user" authenticate < "$stdin" > "$WORK/$name.out" 2>&1 || rc=$?
  cat "$WORK/$name.out"
  if [[ -n $answerer ]]; then
    wait "$answerer" || fail "the daemon did not ask for presence"
  fi
  return "$rc"
}

# The number of presence prompts the daemon logged so far.
prompts() { grep -c '^>>> fido2d: .* allow? \[y/N\]' "$FIDO2D_LOGFILE" || true; }

# pamu2fcfg makes the credential (a touch) and then checks its attestation with libfido2's
# fido_cred_verify, which needs a certificate (x5c). fido2d gives self attestation only, which
# pam-u2f 1.1.0 (Debian 12's) cannot check: it fails with FIDO_ERR_INVALID_ARGUMENT (pam-u2f
# PR #168, after 1.1.0, checks self attestation with fido_cred_verify_self). So: any pamu2fcfg
# must ask for the touch; a later one must print the line; 1.1.0 must fail with exactly that.
pamu2fcfg_registers() {
  answer_presence "$PRESENCE" y
  local answerer=$PRESENCE_ANSWERER rc=0 version
  version=$(pamu2fcfg --version)
  echo "$version"
  pamu2fcfg -u "$PAM_USER" -o "$ORIGIN" -i "$ORIGIN" > "$WORK/pamu2fcfg.out" 2> "$WORK/pamu2fcfg.err" \
    || rc=$?
  cat "$WORK/pamu2fcfg.out" "$WORK/pamu2fcfg.err"
  wait "$answerer" || fail "pamu2fcfg did not ask for presence"
  if [[ $version = "pam_u2f 1.1.0" ]]; then
    ((rc != 0)) || fail "pamu2fcfg 1.1.0 accepted self attestation: use its line (drop the fido2-cred registration)"
    grep -qx 'error: fido_cred_verify (-7) FIDO_ERR_INVALID_ARGUMENT' "$WORK/pamu2fcfg.err" \
      || fail "pamu2fcfg 1.1.0 failed otherwise than on self attestation"
    return 0
  fi
  ((rc == 0)) || fail "pamu2fcfg failed"
  # user:keyHandle,publicKey,es256,+presence (pam_u2f's native format).
  grep -Eq "^$PAM_USER:[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]+,es256,\+presence$" "$WORK/pamu2fcfg.out" \
    || fail "not a pam_u2f line for $PAM_USER"
  cp "$WORK/pamu2fcfg.out" "$AUTHFILE"
}

# Where pamu2fcfg could not write the line: the same registration pamu2fcfg makes
# (makeCredential for the origin, ES256, not discoverable, a touch) with libfido2's fido2-cred,
# whose -V checks the self attestation, and the line of pam_u2f(8)'s format from its output:
# user:keyHandle,publicKey,es256,+presence with the key handle (the credential ID) and the
# public key (x || y) in base64, as pamu2fcfg prints them.
register() {
  if [[ -s $AUTHFILE ]]; then
    echo "pamu2fcfg registered the key"
  else
    {
      head -c 32 /dev/urandom | base64
      echo "$ORIGIN"
      echo "$PAM_USER"
      head -c 32 /dev/urandom | base64
    } > "$WORK/cred.param"
    answer_presence "$PRESENCE" y
    local answerer=$PRESENCE_ANSWERER
    fido2-cred -M -i "$WORK/cred.param" -o "$WORK/cred.made" "$HIDRAW" es256 || fail "fido2-cred -M failed"
    wait "$answerer" || fail "fido2-cred -M did not ask for presence"
    fido2-cred -V -i "$WORK/cred.made" -o "$WORK/cred.out" es256 || fail "fido2-cred -V refused the attestation"
    "$PYTHON" - "$PAM_USER" "$WORK/cred.out" > "$AUTHFILE" << 'PY'
import base64, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
user, path = sys.argv[1:]
lines = open(path).read().splitlines()
key = load_pem_public_key("\n".join(lines[1:]).encode()).public_numbers()
point = key.x.to_bytes(32, "big") + key.y.to_bytes(32, "big")
print(f"{user}:{lines[0]},{base64.b64encode(point).decode()},es256,+presence")
PY
  fi
  chmod 600 "$AUTHFILE"
  cat "$AUTHFILE"
  grep -Eq "^$PAM_USER:[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]+,es256,\+presence$" "$AUTHFILE" \
    || fail "not a pam_u2f line for $PAM_USER"
}

touch_authenticates() {
  pam fido2d-u2f "$PAM_USER" touch y || fail "pamtester failed with a touch"
  grep -q 'successfully authenticated' "$WORK/touch.out" || fail "no 'successfully authenticated'"
  grep -q 'Please touch the device' "$WORK/touch.out" || fail "pam_u2f did not cue the touch"
}

denied_touch_fails() {
  if pam fido2d-u2f "$PAM_USER" denied n; then fail "authenticated with a refused touch"; fi
  grep -q 'Authentication failure' "$WORK/denied.out" || fail "not PAM's 'Authentication failure'"
  grep -q 'presence for .*: Denied' "$FIDO2D_LOGFILE" || fail "the daemon logged no refused presence"
}

no_touch_times_out() {
  local before
  before=$(prompts)
  if pam fido2d-u2f "$PAM_USER" untouched; then fail "authenticated without a touch"; fi
  grep -q 'Authentication failure' "$WORK/untouched.out" || fail "not PAM's 'Authentication failure'"
  (($(prompts) == before + 1)) || fail "the daemon did not ask for presence exactly once"
  grep -q 'presence for .*: TimedOut' "$FIDO2D_LOGFILE" || fail "the daemon logged no timeout"
}

unknown_user_fails() {
  local before
  before=$(prompts)
  if pam fido2d-u2f "$STRANGER" stranger; then fail "a user without a key authenticated"; fi
  grep -q 'Authentication failure\|User not known' "$WORK/stranger.out" || fail "not a PAM failure"
  (($(prompts) == before)) || fail "the key was asked for presence for a user without a key"
}

set_pin() {
  "${TYPED[@]}" "$PIN" "$PIN" -- fido2-token -S "$HIDRAW" || fail "fido2-token -S failed"
  fido2-token -I "$HIDRAW" | grep '^pin retries' | tee "$WORK/retries0"
}

pin_and_touch() {
  printf '%s\n' "$PIN" > "$WORK/pin.stdin"
  pam fido2d-u2f-pin "$PAM_USER" pin y || fail "pamtester failed with the PIN and a touch"
  grep -q 'Please enter the PIN' "$WORK/pin.out" || fail "pam_u2f did not ask for the PIN"
  grep -q 'successfully authenticated' "$WORK/pin.out" || fail "no 'successfully authenticated'"
}

wrong_pin_fails() {
  local before
  before=$(prompts)
  printf '%s\n' 11112222 > "$WORK/wrongpin.stdin"
  if pam fido2d-u2f-pin "$PAM_USER" wrongpin; then fail "authenticated with a wrong PIN"; fi
  grep -q 'Please enter the PIN' "$WORK/wrongpin.out" || fail "pam_u2f did not ask for the PIN"
  grep -q 'Authentication failure' "$WORK/wrongpin.out" || fail "not PAM's 'Authentication failure'"
  (($(prompts) == before)) || fail "a wrong PIN reached the presence prompt"
  fido2-token -I "$HIDRAW" | grep '^pin retries' | tee "$WORK/retries1"
  grep -q '^pin retries: 7' "$WORK/retries1" || fail "the wrong PIN did not cost a retry"
}

no_pin_fails() {
  # pinverification=1 and nothing to answer the PIN prompt with: no assertion is asked for.
  local before
  before=$(prompts)
  if pam fido2d-u2f-pin "$PAM_USER" nopin; then fail "authenticated without a PIN"; fi
  (($(prompts) == before)) || fail "the key was asked for presence without a PIN"
}

check pamu2fcfg pamu2fcfg_registers
check register register || return 0
check touch-authenticates touch_authenticates
check denied-touch-fails denied_touch_fails
check no-touch-times-out no_touch_times_out
check unknown-user-fails unknown_user_fails
check set-pin set_pin
check pin-and-touch pin_and_touch
check wrong-pin-fails wrong_pin_fails
check no-pin-fails no_pin_fails
stop_fido2d > /dev/null 2>&1 || true
exec 7>&-

# The fingerprint reader as the touch: the PAM user is the key's owner with an enrolled finger;
# the same state directory, so the registered credential is the one pam_u2f asks for.
OWNER=$PAM_USER
OWNER_PRINT=fido2d-pam-right-index
source "$REPO/tests/vm/guest/fprintd.sh"

check fprintd fprintd_up || return 0
check enrol enrol || return 0
DAEMON_CHECK=daemon-fingerprint check_daemon --presence fingerprint --owner "$OWNER" \
  --presence-timeout 6 || return 0

finger_authenticates() {
  finger "$OWNER_PRINT" &
  local fingered=$!
  pam fido2d-u2f "$PAM_USER" finger || fail "pamtester failed with the owner's finger"
  wait "$fingered" || fail "nobody claimed the reader"
  grep -q 'successfully authenticated' "$WORK/finger.out" || fail "no 'successfully authenticated'"
  grep -q 'presence: fingerprint' "$FIDO2D_LOGFILE" || fail "the daemon does not use the reader"
}

strangers_finger_fails() {
  finger a-strangers-thumb &
  local fingered=$!
  if pam fido2d-u2f "$PAM_USER" strangerfinger; then fail "authenticated with a stranger's finger"; fi
  wait "$fingered" || fail "nobody claimed the reader"
  grep -q 'Authentication failure' "$WORK/strangerfinger.out" || fail "not PAM's 'Authentication failure'"
}

check finger-authenticates finger_authenticates
check strangers-finger-fails strangers_finger_fails
