#!/usr/bin/env python3
"""An envelope-dialect client (the native-ws pattern on /socket.io/), with
Debian's python3-websockets: connects with ?token=, expects
session_created, pings in an envelope, prints every frame as a JSON line.

Usage: envelope_cli.py URL
"""
import asyncio
import json
import sys

import websockets


async def main(url):
    try:
        async with websockets.connect(url) as ws:
            first = json.loads(await ws.recv())
            print(json.dumps(first), flush=True)
            if first.get("type") != "session_created":
                await ws.wait_closed()
                print(json.dumps({"closed": ws.close_code}), flush=True)
                return
            await ws.send(json.dumps({"type": "ping", "data": {"timestamp": 1}}))
            print(await ws.recv(), flush=True)
    except websockets.exceptions.ConnectionClosed as e:
        print(json.dumps({"closed": e.code}), flush=True)


asyncio.run(main(sys.argv[1]))
