# group-timeout: 600
# systemd-cryptenroll and systemd-cryptsetup with the key, end to end through the real kernel's
# hidraw, loop devices and dm-crypt: LUKS2 images (cryptsetup luksFormat with a known
# passphrase, PBKDF2 kept cheap) get a FIDO2 token with `systemd-cryptenroll
# --fido2-device=auto` (the passphrase from $PASSWORD), and `systemd-cryptsetup attach ...
# fido2-device=auto,headless=true` opens them with the key's hmac-secret: with a touch the
# volume opens and reads back what was written through the passphrase; a refused touch leaves
# no /dev/mapper node. `--fido2-with-client-pin=yes` adds the PIN ($PIN for systemd-cryptsetup;
# typed at systemd-cryptenroll's own prompt), which needs alwaysUv on the key with systemd 252
# (see the PIN section below); `--fido2-with-user-presence=no` asks for an
# hmac-secret without presence, which fido2d refuses (CTAP2_ERR_UNSUPPORTED_OPTION: no secret
# without a touch), so systemd enrols the token with presence required and the volume never
# opens silently. Presence is answered as a person at fido2d's terminal would
# (`--presence terminal`, a FIFO on its stdin): "y" or "n" once the daemon asks.

# No udevd in this guest: libdevmapper creates /dev/mapper nodes itself instead of waiting for
# udev's confirmation (a udevd a previous group started and stopped may have left its socket).
export DM_DISABLE_UDEV=1
# systemd's tty prompt for a PIN (ask_password_tty, accepting a cached one) watches this
# directory and fails with ENOENT without it; a booted systemd has it, this guest's fresh /run
# does not.
mkdir -p /run/systemd/ask-password
CRYPTSETUP_ATTACH=/lib/systemd/systemd-cryptsetup
VOLUME=fido2d-luks
KEYFILE=$WORK/passphrase
PIN=975310
TYPED=("$PYTHON" "$REPO/tests/vm/guest/typed.py")
# A test passphrase, known to this script only; never printed.
# (No newline: cryptsetup's --key-file takes every byte, $PASSWORD has none.)
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' > "$KEYFILE")

PRESENCE=$WORK/presence
mkfifo "$PRESENCE"
# Held open read-write here, so fido2d never reads end-of-file between answers.
exec 7<> "$PRESENCE"
FIDO2D_STDIN=$PRESENCE check_daemon --presence terminal --presence-timeout 15 || return 0

# The number of presence prompts the daemon logged so far.
prompts() { grep -c '^>>> fido2d: .* allow? \[y/N\]' "$FIDO2D_LOGFILE" || true; }

# format NAME: a 20 MiB LUKS2 image $WORK/NAME.img with the passphrase in key slot 0, and 64 KiB
# of random data written through it at the start of the volume ($WORK/NAME.data).
format() {
  local img=$WORK/$1.img
  truncate -s 20M "$img"
  cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file "$KEYFILE" "$img"
  cryptsetup open --key-file "$KEYFILE" "$img" "$VOLUME"
  head -c 65536 /dev/urandom > "$WORK/$1.data"
  dd if="$WORK/$1.data" of="/dev/mapper/$VOLUME" bs=64k count=1 conv=fsync status=none
  cryptsetup close "$VOLUME"
  [[ ! -e /dev/mapper/$VOLUME ]] || fail "cryptsetup close left /dev/mapper/$VOLUME"
  cryptsetup luksDump "$img" | grep -E '^Version|^Keyslots|^  [0-9]+: luks2'
}

# enrol NAME [ANSWER...] -- [systemd-cryptenroll options]: systemd-cryptenroll
# --fido2-device=auto on NAME's image, unlocked by the passphrase from $PASSWORD, while the
# daemon's presence prompts get the ANSWERs; its output in $WORK/NAME.enrol. With
# TYPE_PIN=PIN set, it runs on a terminal of its own where PIN is typed at its PIN prompt.
enrol() {
  local name=$1 answers=() rc=0 answerer
  shift
  while (($#)) && [[ $1 != -- ]]; do
    answers+=("$1")
    shift
  done
  shift
  answer_presence "$PRESENCE" "${answers[@]}"
  answerer=$PRESENCE_ANSWERER
  # A failure makes systemd-cryptenroll ask for the passphrase through an agent: a bounded wait.
  local cmd=(env PASSWORD="$(cat "$KEYFILE")" timeout 90 systemd-cryptenroll --fido2-device=auto "$@" "$WORK/$name.img")
  if [[ -n ${TYPE_PIN:-} ]]; then
    "${TYPED[@]}" "$TYPE_PIN" -- "${cmd[@]}" > "$WORK/$name.enrol" 2>&1 || rc=$?
  else
    "${cmd[@]}" < /dev/null > "$WORK/$name.enrol" 2>&1 || rc=$?
  fi
  cat "$WORK/$name.enrol"
  wait "$answerer" || fail "systemd-cryptenroll did not ask for presence ${#answers[@]} times"
  ((rc == 0)) || fail "systemd-cryptenroll failed ($rc)"
  grep -q 'New FIDO2 token enrolled as key slot 1' "$WORK/$name.enrol" || fail "no FIDO2 key slot"
}

# token NAME: the flags systemd-cryptenroll stored in the image's systemd-fido2 token (not the
# credential ID or the salt), one "name=value" a line, in $WORK/NAME.token.
token() {
  cryptsetup token export --token-id 0 "$WORK/$1.img" | "$PYTHON" -c '
import json, sys
token = json.load(sys.stdin)
assert token["type"] == "systemd-fido2", token["type"]
print("keyslots=" + ",".join(token["keyslots"]))
for flag in ("fido2-clientPin-required", "fido2-up-required", "fido2-uv-required"):
    print(f"{flag}={str(token.get(flag)).lower()}")
' | tee "$WORK/$1.token"
}

# attach NAME OUT [ANSWER...]: systemd-cryptsetup attach of NAME's image as $VOLUME with the
# token only (headless: no passphrase asked for), while the daemon's presence prompts get the
# ANSWERs, every one of which must be used; $PIN_ENV, if set, is its $PIN. Output in
# $WORK/OUT.out; its exit status returned.
attach() {
  local name=$1 out=$2 rc=0 answerer=''
  shift 2
  if (($#)); then
    answer_presence "$PRESENCE" "$@"
    answerer=$PRESENCE_ANSWERER
  fi
  local env=()
  [[ -n ${PIN_ENV:-} ]] && env=(PIN="$PIN_ENV")
  env "${env[@]}" timeout 90 "$CRYPTSETUP_ATTACH" attach "$VOLUME" "$WORK/$name.img" - \
    fido2-device=auto,headless=true < /dev/null > "$WORK/$out.out" 2>&1 || rc=$?
  cat "$WORK/$out.out"
  if [[ -n $answerer ]]; then
    if [[ -n ${SOME_ANSWERS:-} ]]; then
      kill "$answerer" 2> /dev/null || true
      wait "$answerer" || true
    else
      wait "$answerer" || fail "the daemon did not ask for presence $# times"
    fi
  fi
  return "$rc"
}

# opened NAME: the volume is open and shows what was written through the passphrase; closes it.
opened() {
  [[ -b /dev/mapper/$VOLUME ]] || fail "no /dev/mapper/$VOLUME"
  head -c 65536 "/dev/mapper/$VOLUME" | cmp - "$WORK/$1.data" || fail "the volume reads other data"
  "$CRYPTSETUP_ATTACH" detach "$VOLUME"
  [[ ! -e /dev/mapper/$VOLUME ]] || fail "detach left /dev/mapper/$VOLUME"
}

# approved, denied: how many presence requests the daemon approved, refused so far.
approved() { grep -c 'presence for .*: Approved' "$FIDO2D_LOGFILE" || true; }
denied() { grep -c 'presence for .*: Denied' "$FIDO2D_LOGFILE" || true; }

# refused NAME OUT [ANSWER...]: attach fails and leaves no /dev/mapper node. With ANSWERs,
# they go to the prompts that come (systemd-cryptsetup 252 asks twice: through libcryptsetup's
# systemd-fido2 token module, then through its own FIDO2 code), at least one of them does.
refused() {
  local name=$1 out=$2 approved0 denied0
  shift 2
  approved0=$(approved)
  denied0=$(denied)
  if SOME_ANSWERS=1 attach "$name" "$out" "$@"; then fail "systemd-cryptsetup attach succeeded"; fi
  if [[ -e /dev/mapper/$VOLUME ]]; then
    "$CRYPTSETUP_ATTACH" detach "$VOLUME" || true
    fail "/dev/mapper/$VOLUME exists after a refused attach"
  fi
  if (($#)); then
    (($(denied) > denied0)) || fail "the daemon refused no presence"
    (($(approved) == approved0)) || fail "the daemon approved a presence"
  fi
}

# --- a touch, no PIN ---------------------------------------------------------------------------
enrol_touch() {
  enrol touch y y -- --fido2-with-client-pin=no
  token touch
  grep -qx 'fido2-up-required=true' "$WORK/touch.token" || fail "presence not required"
  grep -qx 'fido2-clientPin-required=false' "$WORK/touch.token" || fail "a PIN required"
}

touch_opens() {
  attach touch touch-open y || fail "systemd-cryptsetup attach failed with a touch"
  opened touch
}

denied_touch_refused() {
  refused touch touch-denied n n n
  grep -q 'FIDO_ERR_OPERATION_DENIED' "$WORK/touch-denied.out" || fail "not OPERATION_DENIED"
}

check format-touch format touch || return 0
check enrol-touch enrol_touch
check touch-opens touch_opens
check denied-touch-refused denied_touch_refused

# --- --fido2-with-user-presence=no: fido2d gives no hmac-secret without a touch --------------
enrol_without_presence() {
  enrol nopresence y y -- --fido2-with-client-pin=no --fido2-with-user-presence=no
  grep -q 'Got unsupported option error when' "$WORK/nopresence.enrol" \
    || fail "systemd-cryptenroll did not meet the refusal of an hmac-secret without presence"
  grep -q 'Trying with user presence test turned on' "$WORK/nopresence.enrol" \
    || fail "systemd-cryptenroll did not turn presence on"
  token nopresence
  grep -qx 'fido2-up-required=true' "$WORK/nopresence.token" \
    || fail "the token does not require presence: the volume would be asked for a secret without one"
}

no_silent_open() {
  refused nopresence nopresence-denied n n n
  grep -q 'FIDO_ERR_OPERATION_DENIED' "$WORK/nopresence-denied.out" || fail "not OPERATION_DENIED"
}

nopresence_opens_with_touch() {
  attach nopresence nopresence-open y || fail "systemd-cryptsetup attach failed with a touch"
  opened nopresence
}

check format-nopresence format nopresence || return 0
check enrol-without-presence enrol_without_presence
check no-silent-open no_silent_open
check nopresence-opens-with-touch nopresence_opens_with_touch

# --- --fido2-with-client-pin=yes: the PIN and a touch ----------------------------------------
# hmac-secret has two secrets per credential, one for requests with user verification (the PIN)
# and one without (CTAP 2.1 §12.5). systemd-cryptenroll 252 makes the credential without the
# PIN unless the key refuses that, and then gets the secret with the PIN only if it has one
# (systemd issue #31443). fido2d, like CTAP 2.1 keys, reports makeCredUvNotRqd: no PIN is asked
# for, the token says the PIN is required, and the secret stored is the one without UV, which
# an unlock with the PIN never gets. The workaround that issue names: alwaysUv on the key (which
# turns makeCredUvNotRqd off), so the credential needs the PIN and the secret is the UV one.
set_pin() {
  "${TYPED[@]}" "$PIN" "$PIN" -- fido2-token -S "$HIDRAW" || fail "fido2-token -S failed"
  fido2-token -I "$HIDRAW" | grep '^pin retries' | tee "$WORK/retries0"
}

pin_enrolled_without_pin() {
  TYPE_PIN=$PIN enrol pinbug y y -- --fido2-with-client-pin=yes
  if grep -q 'Please enter security token PIN' "$WORK/pinbug.enrol"; then
    fail "systemd-cryptenroll asked for the PIN: systemd #31443 is fixed, drop this check and alwaysUv"
  fi
  token pinbug
  grep -qx 'fido2-clientPin-required=true' "$WORK/pinbug.token" || fail "no PIN required"
  # The PIN and a touch give the secret with UV: not the enrolled one, the volume stays shut.
  local approved0
  approved0=$(approved)
  if PIN_ENV=$PIN SOME_ANSWERS=1 attach pinbug pinbug-open y y; then
    "$CRYPTSETUP_ATTACH" detach "$VOLUME" || true
    fail "opened with the PIN: systemd #31443 is fixed, drop this check and alwaysUv"
  fi
  [[ ! -e /dev/mapper/$VOLUME ]] || fail "/dev/mapper/$VOLUME exists after a failed attach"
  (($(approved) > approved0)) || fail "no touch approved: not the wrong-secret failure"
}

always_uv() {
  "${TYPED[@]}" "$PIN" -- fido2-token -S -u "$HIDRAW" || fail "fido2-token -S -u failed"
  fido2-token -I "$HIDRAW" | tee "$WORK/info-uv"
  grep -q '^options:.*[ ,]alwaysUv' "$WORK/info-uv" || fail "alwaysUv not on"
  grep -q '^options:.*nomakeCredUvNotRqd' "$WORK/info-uv" || fail "makeCredUvNotRqd still on"
}

enrol_pin() {
  TYPE_PIN=$PIN enrol pin y y -- --fido2-with-client-pin=yes
  grep -q 'Please enter security token PIN' "$WORK/pin.enrol" || fail "systemd-cryptenroll did not ask for the PIN"
  token pin
  grep -qx 'fido2-clientPin-required=true' "$WORK/pin.token" || fail "no PIN required"
  grep -qx 'fido2-up-required=true' "$WORK/pin.token" || fail "presence not required"
}

pin_and_touch_open() {
  PIN_ENV=$PIN attach pin pin-open y || fail "systemd-cryptsetup attach failed with the PIN and a touch"
  opened pin
}

wrong_pin_refused() {
  local before
  before=$(prompts)
  PIN_ENV=11112222 refused pin pin-wrong
  grep -q 'PIN of security token incorrect' "$WORK/pin-wrong.out" || fail "not an incorrect PIN"
  (($(prompts) == before)) || fail "a wrong PIN reached the presence prompt"
  fido2-token -I "$HIDRAW" | grep '^pin retries' | tee "$WORK/retries1"
  grep -q '^pin retries: 7' "$WORK/retries1" || fail "the wrong PIN did not cost a retry"
}

pin_denied_touch_refused() {
  PIN_ENV=$PIN refused pin pin-denied n n n
  grep -q 'FIDO_ERR_OPERATION_DENIED' "$WORK/pin-denied.out" || fail "not OPERATION_DENIED"
}

check set-pin set_pin || return 0
check format-pinbug format pinbug || return 0
check pin-enrolled-without-pin pin_enrolled_without_pin
check always-uv always_uv || return 0
check format-pin format pin || return 0
check enrol-pin enrol_pin
check pin-and-touch-open pin_and_touch_open
check wrong-pin-refused wrong_pin_refused
check pin-denied-touch-refused pin_denied_touch_refused
