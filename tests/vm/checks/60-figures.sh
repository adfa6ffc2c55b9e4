# Figures, not pass/fail on speed: the time of one getAssertion in the guest over hidraw, with
# libfido2 (a whole fido2-assert -G process) and with python-fido2 (one call on an open device),
# and the same python-fido2 call over the UDP transport in the same guest. The guest runs under
# TCG emulation: compare the figures with each other, not with the host. Written to
# /vmout/figures.txt (target/vm/out/figures.txt on the host).

FIGURES=/vmout/figures.txt
check_daemon --presence auto-approve || return 0

fido2_assert_median() {
  local param=$WORK/param i t0 times=()
  {
    head -c 32 /dev/urandom | base64
    echo figures.fido2d.test
    echo figures
    head -c 16 /dev/urandom | base64
  } > "$param"
  fido2-cred -M -q -i "$param" "$HIDRAW" | fido2-cred -V -o "$WORK/cred"
  {
    head -c 32 /dev/urandom | base64
    echo figures.fido2d.test
    head -n 1 "$WORK/cred"
  } > "$WORK/aparam"
  fido2-assert -G -p -i "$WORK/aparam" "$HIDRAW" > /dev/null # warm the page cache
  for i in $(seq 15); do
    t0=$(date +%s%N)
    fido2-assert -G -p -i "$WORK/aparam" "$HIDRAW" > /dev/null
    times+=($((($(date +%s%N) - t0) / 1000)))
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 8p)
  echo "fido2-assert -G -p over $HIDRAW (whole process, guest): median $((median / 1000)).$(printf %03d $((median % 1000))) ms (n=15)" | tee -a "$FIGURES"
}
check fido2-assert-G fido2_assert_median

python_hidraw() {
  PYTHONDONTWRITEBYTECODE=1 "$PYTHON" "$REPO/tests/e2e/assert_latency.py" "$HIDRAW" 30 | tee -a "$FIGURES"
}
check python-getassertion-hidraw python_hidraw

python_udp_in_guest() {
  local log=$LOGS/figures.fido2d-udp.log port
  mkdir -p -m 700 "$WORK/state-udp" # a daemon of its own needs a state of its own
  "$FIDO2D" --transport udp --udp-port 0 --state-dir "$WORK/state-udp" --presence auto-approve \
    < /dev/null > "$log" 2>&1 &
  local pid=$!
  echo "$pid" >> "$WORK/pids"
  for _ in $(seq 100); do
    port=$(sed -n 's/.*CTAPHID over UDP on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || fail "the UDP daemon printed no port"
  PYTHONDONTWRITEBYTECODE=1 "$PYTHON" "$REPO/tests/e2e/assert_latency.py" "$port" 30 | sed 's/$/ (guest)/' | tee -a "$FIGURES"
  kill "$pid"
}
check python-getassertion-udp-guest python_udp_in_guest
