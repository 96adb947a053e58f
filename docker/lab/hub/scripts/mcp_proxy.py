#!/usr/bin/env python3
"""The lab's stdio-to-HTTP bridge for MCP, as the hub image bakes one in.

Claude Code starts this as a stdio MCP server. Each newline-delimited JSON-RPC message
read on stdin is POSTed to one Streamable HTTP MCP endpoint; each answer (a JSON body or
the first `data:` line of an event stream) goes to stdout as one line. Stdout carries
nothing else: every log line goes to stderr.

    mcp_proxy.py URL [--retries N] [--timeout MS] [--header KEY=VALUE ...]

Every request carries the `--header` pairs, `X-QMS-Identity: $QMS_USER` (when set) and
an `X-QMS-Instance` id made once per process. A failed attempt (no connection, a
timeout, an HTTP error status, an unreadable body) is tried again up to N times with a
growing pause; when none succeeds the client gets a JSON-RPC error naming the last
failure. A 202 (an accepted notification) writes nothing.
"""

import argparse
import json
import os
import sys
import time
import uuid

import httpx

JSONRPC_SERVER_ERROR = -32000


def say(text):
    stamp = time.strftime("%H:%M:%S")
    sys.stderr.write(f"{stamp} mcp_proxy: {text}\n")
    sys.stderr.flush()


def options(argv):
    p = argparse.ArgumentParser(prog="mcp_proxy.py", description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--retries", type=int, default=3, metavar="N")
    p.add_argument("--timeout", type=int, default=10000, metavar="MS")
    p.add_argument("--header", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args(argv)


def request_headers(pairs, instance):
    out = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            say(f"ignoring --header {pair!r}: no '='")
            continue
        out[key.strip()] = value
    who = os.environ.get("QMS_USER")
    if who:
        out["X-QMS-Identity"] = who
    out["X-QMS-Instance"] = instance
    return out


def decode(response):
    kind = response.headers.get("content-type", "").lower()
    if "text/event-stream" not in kind:
        return response.json()
    for line in response.text.splitlines():
        if line.startswith("data:"):
            data = line[len("data:"):].strip()
            if data:
                return json.loads(data)
    raise ValueError("event stream without a data line")


def forward(client, url, message, headers, retries, timeout):
    """The answer to `message`, None for a 202, or a JSON-RPC error after all tries."""
    body = json.dumps(message)
    failure = None
    tries = max(retries, 0) + 1
    for attempt in range(1, tries + 1):
        try:
            response = client.post(url, content=body, headers=headers, timeout=timeout)
            if response.status_code == 202:
                return None
            if response.status_code >= 400:
                raise RuntimeError(f"HTTP {response.status_code} {response.text.strip()[:200]}")
            return decode(response)
        except Exception as exc:  # every failure is worth another try
            failure = exc
            if attempt < tries:
                pause = min(2 ** (attempt - 1), 8)
                say(f"attempt {attempt}/{tries} failed ({exc}); again in {pause}s")
                time.sleep(pause)
    say(f"giving up after {tries} attempts: {failure}")
    answer = {
        "jsonrpc": "2.0",
        "error": {
            "code": JSONRPC_SERVER_ERROR,
            "message": f"{url} failed {tries} times, last: {failure}",
        },
    }
    if isinstance(message, dict) and "id" in message:
        answer["id"] = message["id"]
    return answer


def main(argv):
    opts = options(argv)
    instance = str(uuid.uuid4())
    headers = request_headers(opts.header, instance)
    timeout = opts.timeout / 1000.0
    say(f"upstream {opts.url}, {opts.retries} retries, timeout {opts.timeout} ms, "
        f"instance {instance}, identity {headers.get('X-QMS-Identity', '(none)')}")
    with httpx.Client() as client:
        for raw in sys.stdin:
            raw = raw.strip()
            if not raw:
                continue
            try:
                message = json.loads(raw)
            except ValueError as exc:
                say(f"not JSON on stdin, skipped: {exc}")
                continue
            if isinstance(message, dict):
                say(f"-> {message.get('method', '(answer)')} id={message.get('id', '-')}")
            answer = forward(client, opts.url, message, headers, opts.retries, timeout)
            if answer is None:
                continue
            line = json.dumps(answer)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            say(f"<- {len(line)} bytes")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(0)
