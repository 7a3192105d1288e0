"""Baseline for the lookup benchmark: aiohttp doing nothing but a dict lookup and a JSON answer."""

import json
import sys

from aiohttp import web

PATCHES = {f"E{index:05d}": {"id": f"p{index:05d}", "version": "1.0.0"} for index in range(40_000)}


async def lookup(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.json_response({"patch": PATCHES.get(body["error"])})


app = web.Application()
app.router.add_post("/api/dev/self-heal", lookup)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
