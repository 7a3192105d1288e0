"""Baseline for the lookup benchmark: aiohttp doing nothing but a JSON parse, a dict lookup and
a JSON answer.

The answer has the size of a real one (a patch and its signed envelope, about 900 bytes), looked
up by the error's first word, so the baseline writes what the registry API writes: the figure
compares what the API does beyond that (authentication, validation, matching, logs, metrics).

Usage: python bench/bare_lookup_server.py PORT [PATCHES]
"""

import json
import sys

from aiohttp import web

_ENVELOPE = {
    "format": "selfheal.patch.v1",
    "payload": "x" * 560,
    "signatures": [{"alg": "Ed25519", "keyId": "0" * 16, "signature": "s" * 88}],
}
PATCHES = {
    f"E{index:05d}": json.dumps(
        {
            "patch": {
                "id": f"p{index:05d}",
                "version": "1.0.0",
                "description": f"bench patch {index}",
                "severity": "low",
                "matched_by": "code",
                "rule": f"code: error signature 'E{index:05d}'",
            },
            "envelope": _ENVELOPE,
        }
    ).encode()
    for index in range(int(sys.argv[2]) if len(sys.argv) > 2 else 40_000)
}
MISS = b'{"patch": null}'


async def lookup(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.Response(body=PATCHES.get(body["error"].split(" ", 1)[0], MISS), content_type="application/json")


app = web.Application()
app.router.add_post("/api/dev/self-heal", lookup)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
