"""
Subscriber black- and whitelists of one publication (PUBLISH ``exclude``,
``exclude_authid``, ``exclude_authrole``, ``eligible``, ``eligible_authid``,
``eligible_authrole``, in any combination: a receiver must be in every
eligible list given and in no exclude list), compiled once per publication.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FILTERS", "Receivers", "compile_filters"]

FILTERS = ("exclude", "exclude_authid", "exclude_authrole", "eligible", "eligible_authid", "eligible_authrole")

class Receivers:
    """The black/white list of one publication, compiled once."""

    __slots__ = ("exclude", "exclude_authid", "exclude_authrole", "eligible", "eligible_authid", "eligible_authrole")

    def __init__(self, options: dict) -> None:
        for name in FILTERS:
            value = options.get(name)
            setattr(self, name, frozenset(value) if isinstance(value, list) else None)

    def allows(self, info) -> bool:
        if self.exclude is not None and info.session_id in self.exclude:
            return False
        if self.exclude_authid is not None and info.authid in self.exclude_authid:
            return False
        if self.exclude_authrole is not None and info.authrole in self.exclude_authrole:
            return False
        if self.eligible is not None and info.session_id not in self.eligible:
            return False
        if self.eligible_authid is not None and info.authid not in self.eligible_authid:
            return False
        if self.eligible_authrole is not None and info.authrole not in self.eligible_authrole:
            return False
        return True


def compile_filters(options: Any) -> Receivers | None:
    if type(options) is not dict or not any(name in options for name in FILTERS):
        return None
    return Receivers(options)
