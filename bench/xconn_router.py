#!/usr/bin/env python3
"""xconn's router on 127.0.0.1:PORT, realm1 open to anonymous clients, WebSocket at /ws.

    bench/.xconn-venv/bin/python bench/xconn_router.py PORT

Started the way xconn's own ``xcorn --start-router`` starts one
(``xconn._client.helpers.start_server_async``: a ``Router`` with the realm
added, served by ``xconn.server.Server`` on aiohttp, the default asyncio loop).
Runs under the xconn virtualenv that bench/run.py makes; not part of wampd.
"""

import asyncio
import sys

from xconn.router import Router
from xconn.server import Server


async def serve(port: int) -> None:
    router = Router()
    router.add_realm("realm1")
    await Server(router).start("127.0.0.1", port)


def main() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve(int(sys.argv[1])))
    loop.run_forever()


if __name__ == "__main__":
    main()
