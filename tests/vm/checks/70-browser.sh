# Real browsers enrol and sign in with the virtual key: tests/browser/run_matrix.py runs the
# option matrix of tests/browser/matrix.py (userVerification, residentKey, attestation,
# pubKeyCredParams, allowCredentials given and empty, without and with a PIN) against a local
# relying party on http://cNN.rp.localhost (py_webauthn verifies every attestation and
# assertion), in chromium-headless-shell, chromium --headless=new, Firefox (Marionette), and
# Chromium on Xvfb where xdotool types the PIN into Chromium's own PIN dialog; python-fido2's
# Fido2Client runs the cells no browser can (the reasons are in matrix.py). One result line
# per ceremony, from the relying party's verdicts.
# group-timeout: 1500
# vm-memory: 2560

check_daemon --presence auto-approve --log-level debug || return 0
MATRIX=("$PYTHON" "$REPO/tests/browser/run_matrix.py" --results "$WORK/verdicts.jsonl" --logs "$LOGS"
  --device "$HIDRAW")

xvfb() {
  Xvfb :99 -screen 0 1280x900x24 -nolisten tcp > "$LOGS/$GROUP.xvfb.log" 2>&1 &
  echo $! >> "$WORK/pids"
  local i
  for ((i = 0; i < 100; i++)); do
    xdpyinfo -display :99 > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "Xvfb did not start"
}

# The cell of the EU Login walkthrough below: Chromium on Xvfb runs it there, with the agent
# approving; the Xvfb matrix run leaves it out, so the same ceremonies are not run twice.
EU_LOGIN_CELL=$("$PYTHON" -c "import sys; sys.path.insert(0, '$REPO/tests/browser'); import matrix
print(next(c.index for c in matrix.CELLS if c.name == 'pin-uvpref-rkpref-direct-es256-rs256'))")
XVFB_CELLS=$("$PYTHON" -c "import sys; sys.path.insert(0, '$REPO/tests/browser'); import matrix
print(','.join(str(c.index) for c in matrix.CELLS if 'xvfb' in c.clients and c.index != $EU_LOGIN_CELL))")

# Without a PIN first: the Xvfb run sets it (its first cell) and runs every other PIN cell.
check headless-shell "${MATRIX[@]}" --client headless-shell
check headless-new "${MATRIX[@]}" --client headless-new
check firefox "${MATRIX[@]}" --client firefox
check python-fido2 "${MATRIX[@]}" --client python-fido2
check xvfb-up xvfb
export DISPLAY=:99
check xvfb "${MATRIX[@]}" --client xvfb --cells "$XVFB_CELLS"

# What a person sees (docs/eu-login.md): fido2d asks the agent, not auto-approved. The same
# key (its PIN and credentials are kept in the state dir) restarted with --presence agent;
# `fido2ctl agent --terminal` shows each prompt and a person's "y" answers it; Chromium on
# Xvfb enrols and signs in as EU Login would, its PIN dialog typed into by xdotool (the matrix's
# cell for it, verified by the relying party like every other cell).

stop_fido2d
start_fido2d --presence agent --presence-timeout 60 > "$LOGS/$GROUP.agent-daemon.log" 2>&1
mkfifo "$WORK/agent.in"
"$FIDO2CTL" agent --terminal < "$WORK/agent.in" > "$WORK/agent.out" 2>&1 &
echo $! >> "$WORK/pids"
exec 7> "$WORK/agent.in" # the agent's stdin stays open for the answers

agent_connected() {
  cat "$LOGS/$GROUP.agent-daemon.log"
  [[ -n $HIDRAW ]] || fail "fido2d did not start with --presence agent"
  local i
  for ((i = 0; i < 150; i++)); do
    grep -q 'connected to fido2d' "$WORK/agent.out" && return 0
    sleep 0.2
  done
  cat "$WORK/agent.out"
  fail "fido2ctl agent did not connect"
}

# The person at the screen: reads each new prompt and answers y.
answer_prompts() {
  local answered=0 asked
  while sleep 0.3; do
    asked=$(grep -c '\[y/N\]' "$WORK/agent.out")
    while ((answered < asked)); do
      echo y >&7
      answered=$((answered + 1))
    done
  done
}

agent_walkthrough() {
  answer_prompts &
  local answerer=$!
  local rc=0
  "${MATRIX[@]}" --device "$HIDRAW" --client xvfb --label agent --cells "$EU_LOGIN_CELL" || rc=$?
  kill "$answerer"
  echo "---- what the agent showed"
  cat "$WORK/agent.out"
  ((rc == 0)) || fail "the ceremonies failed"
  grep -q 'Register this security key?' "$WORK/agent.out" || fail "no registration prompt"
  grep -q 'Sign in with this security key?' "$WORK/agent.out" || fail "no sign-in prompt"
  grep -q "c$(printf %02d "$EU_LOGIN_CELL").rp.localhost" "$WORK/agent.out" || fail "the prompt does not name the site"
}

check agent-connected agent_connected
check agent-walkthrough agent_walkthrough

"$PYTHON" - "$WORK/verdicts.jsonl" >> "$RESULTS" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    v = json.loads(line)
    word = "PASS" if v["ok"] else "FAIL"
    print(f"{word} browser/{v['client']}/{v['cell']}/{v['step']}" + ("" if v["ok"] else f": {v['detail']}"))
PY
