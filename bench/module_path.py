"""
Which of wampd's modules one CALL and one PUBLISH pass through, bytes in to
bytes out (the README's Architecture section walks the same path).

    PYTHONPATH=. .venv/bin/python bench/module_path.py

Runs a MemoryRouter (RawSocket, then WebSocket, over an in-memory transport,
JSON) and records,
with ``sys.setprofile``, every router module whose code runs while one
CALL/RESULT round trip and one acknowledged PUBLISH are routed.  The test
harness itself (``router.testing``) is left out.
"""

from __future__ import annotations

import sys

from autobahn.wamp.types import PublishOptions

from router.testing import MemoryRouter


def modules_during(run) -> list[str]:
    seen: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            name = frame.f_globals.get("__name__", "")
            if name.startswith("router") and name != "router.testing" and name not in seen:
                seen.append(name)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return seen


def paths(memory: MemoryRouter) -> dict[str, list[str]]:
    """The router modules one CALL and one acknowledged PUBLISH run code in, by message."""
    callee, caller, subscriber = memory.join(), memory.join(), memory.join()
    memory.result(callee.register(lambda x: x, "com.echo"))
    memory.result(subscriber.subscribe(lambda x: None, "com.news"))
    memory.result(caller.call("com.echo", 1))  # warm: first-sight caches filled
    return {
        "CALL": modules_during(lambda: memory.result(caller.call("com.echo", 1))),
        "PUBLISH": modules_during(
            lambda: memory.result(caller.publish("com.news", 1, options=PublishOptions(acknowledge=True)))
        ),
    }


def main() -> None:
    for transport in ("rawsocket", "websocket"):
        print(f"{transport}:")
        for what, names in paths(MemoryRouter(transport=transport)).items():
            print(f"  {what}: {len(names)} modules, in order of first use: {' -> '.join(names)}")


if __name__ == "__main__":
    main()
