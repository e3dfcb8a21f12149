#!/usr/bin/env python3
"""The Claude Code server's Python CLI client, as its README shows it
(python-socketio, Debian's python3-socketio), pointed at Companion.

Usage: sio_cli.py URL TOKEN TRANSPORT(default|websocket) COMMAND
Prints one JSON line per thing it heard, then {"done": ...}; exits 0.
"""
import json
import sys
import threading

import socketio

url, token, transport, command = sys.argv[1:5]
session_id = "py-session"
done = threading.Event()
sio = socketio.Client(reconnection=False)


lock = threading.Lock()


def out(**kw):
    # Handlers run on python-socketio's threads: one whole line at a time.
    line = json.dumps(kw) + "\n"
    with lock:
        sys.stdout.write(line)
        sys.stdout.flush()


@sio.event
def connect():
    out(event="connect", transport=sio.transport())
    sio.emit("join_session", session_id)
    sio.emit("system_status", callback=lambda status: out(event="status_ack", status=status))
    sio.emit("terminal_command", {"command": command, "sessionId": session_id})


@sio.event
def connect_error(data):
    out(event="connect_error", data=data)
    done.set()


@sio.event
def terminal_output(data):
    out(event="terminal_output", data=data)
    if data.get("type") in ("exit", "error"):
        done.set()


try:
    kwargs = {"auth": {"token": token}}
    if transport == "websocket":
        kwargs["transports"] = ["websocket"]
    sio.connect(url, **kwargs)
except socketio.exceptions.ConnectionError as e:
    out(event="connection_error", message=str(e))
    sys.exit(0)
done.wait(20)
out(event="upgraded", transport=sio.transport())
sio.disconnect()
out(done=True)
