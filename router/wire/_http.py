"""The HTTP pieces wampd's own sites share: no ``Server`` header, and request bodies bounded before they are read."""

from __future__ import annotations

from twisted.web import http, server

__all__ = ["BoundedChannel", "QuietRequest"]


class QuietRequest(server.Request):
    """No ``Server`` header (wampd names nothing), and a body cut off past the site's limit."""

    _received = 0

    def setHeader(self, name, value):
        if name.lower() != b"server":
            super().setHeader(name, value)

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > self.channel.site.max_body:
            self.channel.refuse_too_large()
            return
        super().handleContentChunk(data)


class BoundedChannel(http.HTTPChannel):
    """Refuses a body announced (or grown) past the site's ``max_body`` before reading it: 413, connection closed."""

    refused = False

    def allHeadersReceived(self):
        if self.length is not None and self.length > self.site.max_body:
            self.refuse_too_large()
            return
        super().allHeadersReceived()

    def rawDataReceived(self, data):
        if not self.refused:
            super().rawDataReceived(data)

    def allContentReceived(self):
        if not self.refused:
            super().allContentReceived()

    def refuse_too_large(self) -> None:
        self.refused = True
        body = f"a request body is at most {self.site.max_body} bytes".encode()
        self.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.loseConnection()
