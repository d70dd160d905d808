"""Listener plugins for the loader and twistd option tests."""


class Thing:
    """A listener class that takes options."""

    def __init__(self, greeting="hello", count=1):
        self.greeting = greeting
        self.count = count

    def on_session_joined(self, event):
        return None


class Ranked:
    """A listener with its own priority."""

    priority = 7

    def on_client_connected(self, event):
        return None


class BadlyRanked:
    priority = "high"

    def on_client_connected(self, event):
        return None


class Namespace:
    """Holds a listener class, for 'module:Outer.Inner' paths."""

    class Inner:
        def on_server_launched(self, event):
            return None


def make_thing(greeting):
    """A factory function."""
    return Thing(greeting=greeting)


def failing_factory(**options):
    raise ValueError("database is down")


def typo_factory():
    # A TypeError raised inside the body, not by the call's signature.
    return len(1)


class NotAListener:
    """Callable, but what it makes has no on_<event> methods."""


#: A ready-made listener instance.
thing_instance = Thing(greeting="ready")

#: Neither callable nor a listener.
not_callable = 42
