#!/usr/bin/env python3
"""The external service of the pool cases of `make bench`: a contacts API
on 127.0.0.1:PORT that answers every call after DELAY seconds (0: at once),
or never when DELAY is negative (it accepts, reads the request and keeps
the connection open: a hung service).  Keep-alive HTTP/1.1, asyncio, one
process, so a thousand calls a second do not cost the driver its CPU.

    standin-delay.py PORT DELAY

Answers: GET /contacts?email=... -> [] (no such contact), POST /contacts
-> 201 with a new id_candidate (a string), anything else -> 200 {}."""

import asyncio
import itertools
import sys

PORT = int(sys.argv[1])
DELAY = float(sys.argv[2])
ids = itertools.count(1)


def answer(method, path):
    if method == "POST" and path.split("?")[0] == "/contacts":
        return 201, '{"id_candidate":"p%d"}' % next(ids)
    if method == "GET" and path.startswith("/contacts?"):
        return 200, "[]"
    return 200, "{}"


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if length:
                await reader.readexactly(length)
            if DELAY < 0:
                await asyncio.Event().wait()     # hung: never answers
            if DELAY > 0:
                await asyncio.sleep(DELAY)
            status, body = answer(method, path)
            data = body.encode()
            writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json"
                         b"\r\nContent-Length: %d\r\n\r\n" % (status,
                                                           len(data)) + data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", PORT,
                                        backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
