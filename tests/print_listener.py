"""A listener plugged into twistd by dotted path in the tests: one line per event."""

from twisted.logger import Logger


class PrintAll:
    """Logs ``EVENT <name> <connection id>`` for every event, with a prefix option."""

    def __init__(self, prefix="EVENT"):
        self.prefix = prefix
        self.log = Logger(namespace="tests.print_listener")

    def _line(self, event):
        conn = getattr(event, "connection", None) or getattr(getattr(event, "session", None), "connection", None)
        self.log.info(
            "{prefix} {name} {conn}", prefix=self.prefix, name=event.name, conn=conn.id if conn else "-"
        )

    on_server_launched = on_client_connected = on_client_rejected = _line
    on_session_joining = on_session_joined = on_session_left = _line
    on_client_disconnected = on_client_error = on_server_stopping = _line
    on_server_reloaded = _line
