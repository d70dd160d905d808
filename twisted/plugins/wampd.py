"""
The twistd plugin for wampd: ``twistd -n wampd --help``.

Only a lazy ServiceMaker lives here, so that listing twistd's plugins does
not import the router; ``router.tap`` is imported when ``wampd`` is run.
"""

from twisted.application.service import ServiceMaker

wampd = ServiceMaker(
    "wampd",
    "router.tap",
    "A WAMP v2 router (WebSocket and RawSocket) with lifecycle listener plugins.",
    "wampd",
)
