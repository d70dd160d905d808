"""The benchmark floor: a plain Autobahn WebSocket echo server on Twisted.

    python bench/echo_server.py PORT

Listens on 127.0.0.1:PORT with Autobahn's default protocol options and sends
every message back as it came.  A routed call is two messages in and two out,
so (echo messages/s) / 2 is what a router on the same stack could reach if
routing itself cost nothing.  Stops on SIGTERM/SIGINT.
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor


class EchoProtocol(WebSocketServerProtocol):
    def onMessage(self, payload, isBinary):
        self.sendMessage(payload, isBinary)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: echo_server.py PORT")
    port = int(argv[1])
    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = EchoProtocol
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    print(f"echo server listening on 127.0.0.1:{port} ({type(reactor).__name__})", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
