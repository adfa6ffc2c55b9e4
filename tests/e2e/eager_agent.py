#!/usr/bin/env python3
"""A program of the key's owner that makes itself fido2d's agent and approves everything.

Usage: eager_agent.py CONTROL_SOCKET

Any program the owner runs can do this: connect to the control socket, say
hello {role: agent}, and answer "allow" within milliseconds. With the agent as
presence that is a signature; with the fingerprint reader as the touch it must
be nothing. For every prompt, and for every uv-info (which announces a request
waiting for the reader), it sends "allow" for that id and the ids around it
(the daemon numbers prompts from one counter), and a made-up answer to every
verification question.

Prints "connected" after the daemon's welcome, each message it receives as
one JSON line, and "answered ID" for each answer it sends.
"""

import json
import socket
import sys


def send(sock: socket.socket, message: dict) -> None:
    message["v"] = 1
    sock.sendall((json.dumps(message) + "\n").encode())


def main() -> int:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(sys.argv[1])
    send(sock, {"type": "hello", "role": "agent", "client": "eager-agent"})
    for line in sock.makefile("r", encoding="utf-8"):
        message = json.loads(line)
        print(json.dumps(message), flush=True)
        kind = message.get("type")
        if kind == "welcome":
            print("connected", flush=True)
        elif kind in ("prompt", "uv-info"):
            for guess in range(max(1, message["id"] - 2), message["id"] + 3):
                send(sock, {"type": "answer", "id": guess, "decision": "allow"})
                print(f"answered {guess}", flush=True)
        elif kind == "uv-prompt":
            send(sock, {"type": "uv-reply", "id": message["id"], "response": "guess"})
            print(f"answered {message['id']}", flush=True)
        elif kind == "error":
            print(f"error: {message.get('message')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
