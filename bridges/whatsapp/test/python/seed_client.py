"""A Python client of the WhatsApp bridge's API, written the way the
original BridgeServer's Python clients are (python3-websockets): auth first,
then qr/status/message in, send -> sent out. Used by test/api.test.ts.

The URL, the token and the chat to write to come from the environment
(BRIDGE_URL, BRIDGE_TOKEN, SEND_TO); each event is printed as one line.
It sends one text once WhatsApp is connected and exits after the first
message it receives.
"""
import asyncio
import json
import os
import sys

import websockets


def say(*parts):
    print(*parts)
    sys.stdout.flush()


async def main():
    url = os.environ["BRIDGE_URL"]
    token = os.environ["BRIDGE_TOKEN"]
    to = os.environ["SEND_TO"]
    sent = False
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        async for raw in ws:
            data = json.loads(raw)
            kind = data.get("type")
            if kind == "auth":
                say("auth", data.get("ok"))
            elif kind == "qr":
                say("qr", data.get("qr"))
            elif kind == "status":
                say("status", data.get("status"))
                if data.get("status") == "connected" and not sent:
                    sent = True
                    await ws.send(json.dumps({"type": "send", "to": to, "text": "hello from python"}))
            elif kind == "sent":
                say("sent", data.get("to"))
            elif kind == "message":
                say("message", data.get("from"), data.get("chat"), data.get("text"))
                return 0
            elif kind == "error":
                say("error", data.get("code"), data.get("error"))
    say("closed")
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
