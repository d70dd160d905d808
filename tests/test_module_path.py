"""
The house's promise (README, Architecture): a CALL and a PUBLISH each run code
in at most five of wampd's modules from bytes in to bytes out, on either
transport: the transport, the codec, the session, the realm, and the dealer or
broker.  ``bench/module_path.py`` prints the same paths.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from router.testing import MemoryRouter

_BENCH = runpy.run_path(str(Path(__file__).resolve().parent.parent / "bench" / "module_path.py"))


@pytest.mark.parametrize("transport", ["rawsocket", "websocket"])
def test_call_and_publish_pass_through_five_modules(transport):
    """A plain CALL/RESULT and an acknowledged PUBLISH/EVENT touch exactly the five spine modules, in order."""
    found = _BENCH["paths"](MemoryRouter(transport=transport))
    spine = [f"router.wire.{transport}", "router.wire.codec", "router.session", "router.realm"]
    assert found["CALL"] == spine + ["router.dealer._calls"]
    assert found["PUBLISH"] == spine + ["router.broker._broker"]
