#!/usr/bin/env python3
"""Runs a command on a terminal of its own and types answers at its PIN prompts,
the way a person would.

Usage: typed.py ANSWER... -- COMMAND [ARGS...]

libfido2's tools and OpenSSH read a PIN with readpassphrase(3) from the
controlling terminal (/dev/tty), echo off, not from a pipe. So the command runs
in a new session whose controlling terminal is a pseudo-terminal; each time its
output ends with a prompt ("...PIN...:" or "...passphrase...:"), the next
answer is typed, followed by Enter (a hint such as systemd's "(press TAB for no echo)" may
follow the colon). The command's output is copied to stdout;
the exit status is the command's. A prompt with no answer left, or more than
60 s without output, kills the command (exit 124).
"""

import os
import pty
import re
import select
import signal
import sys

# systemd's tty prompt (systemd-cryptenroll's "Please enter security token PIN:") adds a grey
# "(press TAB for no echo)" hint after the colon: ANSI sequences and the hint may follow it.
PROMPT = re.compile(
    rb"(PIN|passphrase)[^\n]*:(\s|\x1b\[[0-9;]*[A-Za-z]|\(press TAB for no echo\))*$",
    re.IGNORECASE,
)
SILENCE_LIMIT = 60


def main(argv):
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    answers, command = argv[1:split], argv[split + 1 :]
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], SILENCE_LIMIT)
        if not ready:
            print(f"\ntyped.py: no output for {SILENCE_LIMIT} s", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return 124
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the command closed its terminal (it exited)
            data = b""
        if not data:
            break
        # The terminal ends lines with CR LF; the caller greps lines.
        sys.stdout.buffer.write(data.replace(b"\r\n", b"\n"))
        sys.stdout.flush()
        pending = (pending + data)[-512:]
        if PROMPT.search(pending):
            pending = b""
            if not answers:
                print("\ntyped.py: a prompt, but no answer left", file=sys.stderr)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return 124
            os.write(fd, answers.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
