"""
A role's permissions indexed for the precedence rules of
L{router.auth._authorizer}: exact, then the longest prefix, then the most
specific wildcard; and the verdict of a whole pattern.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

__all__ = ["pattern_overlaps_reserved", "uri_is_reserved"]


class _Permission(Protocol):
    uri: str
    match: str
    call: bool
    register: bool
    publish: bool
    subscribe: bool
    disclose: bool | None


class _Role(Protocol):
    name: str
    permissions: tuple[_Permission, ...]
    disclose: bool


def uri_is_reserved(uri: str) -> bool:
    """Whether C{uri} is a C{wamp.*} URI (its first component is C{wamp})."""
    return uri == "wamp" or uri.startswith("wamp.")


def _names_wamp(permission: _Permission) -> bool:
    if permission.match == "prefix":
        return uri_is_reserved(permission.uri)
    return permission.uri.split(".", 1)[0] == "wamp"


class _PatternIndex:
    """The permissions of one role, indexed for the precedence rules."""

    __slots__ = ("exact", "prefixes", "prefix_lengths", "wildcards")

    def __init__(self, permissions: Iterable[_Permission]) -> None:
        self.exact: dict[str, _Permission] = {}
        self.prefixes: dict[int, dict[str, _Permission]] = {}
        wildcards: dict[int, list[tuple[tuple, tuple[str, ...], _Permission]]] = {}
        for index, permission in enumerate(permissions):
            uri = permission.uri
            if permission.match == "exact":
                self.exact.setdefault(uri, permission)
            elif permission.match == "prefix":
                self.prefixes.setdefault(len(uri), {}).setdefault(uri, permission)
            elif permission.match == "wildcard":
                parts = tuple(uri.split("."))
                key = (
                    -sum(1 for part in parts if part),
                    tuple(0 if part else 1 for part in parts),
                    index,
                )
                wildcards.setdefault(len(parts), []).append((key, parts, permission))
            else:
                raise ValueError(f"unknown match policy {permission.match!r}")
        self.prefix_lengths = sorted(self.prefixes, reverse=True)
        self.wildcards = {
            count: [(parts, permission) for _, parts, permission in sorted(entries, key=lambda e: e[0])]
            for count, entries in wildcards.items()
        }

    def lookup(self, uri: str) -> _Permission | None:
        permission = self.exact.get(uri)
        if permission is not None:
            return permission
        for length in self.prefix_lengths:
            if length <= len(uri):
                permission = self.prefixes[length].get(uri[:length])
                if permission is not None:
                    return permission
        if self.wildcards:
            components = uri.split(".")
            for parts, permission in self.wildcards.get(len(components), ()):
                if all(not part or part == component for part, component in zip(parts, components)):
                    return permission
        return None

    # -- patterns (SUBSCRIBE and REGISTER with match prefix or wildcard) -----------------

    def pattern_verdict(self, action: str, pattern: str, match: str) -> bool | None:
        """
        Whether this role may C{action} on every URI that C{pattern} (a
        C{prefix} or C{wildcard} pattern) can match, by the same precedence
        as L{lookup} applied to each of those URIs:

          - False: a permission that decides for some of them denies;
          - True: permissions decide for all of them, and all allow;
          - None: none denies, but some (or all) of them are decided by no
            permission (left to the dynamic authorizer, else denied).

        Conservative: a permission that might decide for one of the URIs is
        counted even when an exact analysis would show it never does.
        """
        if match == "wildcard" and "" not in pattern.split("."):
            permission = self.lookup(pattern)  # no empty component: one URI
            return None if permission is None else bool(getattr(permission, action))
        deciding, covered = (
            self._prefix_pattern(pattern) if match == "prefix" else self._wildcard_pattern(pattern)
        )
        if any(not getattr(permission, action) for permission in deciding):
            return False
        return True if covered else None

    def _prefix_pattern(self, pattern: str) -> tuple[list[_Permission], bool]:
        deciding = [p for uri, p in self.exact.items() if uri.startswith(pattern)]
        covering = None
        for length in self.prefix_lengths:
            for uri, permission in self.prefixes[length].items():
                if pattern.startswith(uri):
                    if covering is None:
                        covering = permission  # the longest prefix holding the whole range
                elif uri.startswith(pattern):
                    deciding.append(permission)  # decides inside the pattern's range
        if covering is not None:
            return deciding + [covering], True
        # URIs no prefix holds fall to the wildcards (which never hold a whole prefix range)
        for entries in self.wildcards.values():
            deciding.extend(p for parts, p in entries if _prefix_meets_wildcard(pattern, parts))
        return deciding, False

    def _wildcard_pattern(self, pattern: str) -> tuple[list[_Permission], bool]:
        wants = pattern.split(".")
        count = len(wants)
        deciding = []
        for uri, permission in self.exact.items():
            parts = uri.split(".")
            if len(parts) == count and all(not w or w == p for w, p in zip(wants, parts)):
                deciding.append(permission)
        # every URI the pattern matches starts with its text up to the first empty component
        head = []
        for want in wants:
            if not want:
                break
            head.append(want)
        literal = ".".join(head) + ("." if len(head) < count else "")
        covered = False
        for length in self.prefix_lengths:
            for uri, permission in self.prefixes[length].items():
                if literal.startswith(uri):
                    deciding.append(permission)
                    covered = True
                elif _prefix_meets_wildcard(uri, tuple(wants)):
                    deciding.append(permission)
            if covered:
                break  # shorter prefixes never decide: this one holds every URI
        if covered:
            return deciding, True
        for parts, permission in self.wildcards.get(count, ()):
            if all(not p or not w or p == w for p, w in zip(parts, wants)):
                deciding.append(permission)
                if all(not p or p == w for p, w in zip(parts, wants)):
                    # matches every URI of the pattern: less specific ones never decide
                    return deciding, True
        return deciding, False


def _prefix_meets_wildcard(prefix: str, parts: tuple[str, ...]) -> bool:
    """Whether some URI matched by the wildcard C{parts} may start with C{prefix}."""
    *complete, partial = prefix.split(".")
    if len(complete) >= len(parts):
        return False
    for want, have in zip(parts, complete):
        if not have or (want and want != have):
            return False
    want = parts[len(complete)]
    return not want or want.startswith(partial)


def pattern_overlaps_reserved(pattern: str, match: str) -> bool:
    """Whether a C{prefix} or C{wildcard} pattern can match C{wamp.*} URIs."""
    if match == "prefix":
        return "wamp.".startswith(pattern) or pattern.startswith("wamp.")
    return pattern.split(".", 1)[0] in ("", "wamp")


def _reserved_part(pattern: str, match: str) -> str:
    """The part of a pattern overlapping C{wamp.*}, as a pattern of the same kind."""
    if match == "prefix":
        return pattern if pattern.startswith("wamp.") else "wamp."
    _, dot, rest = pattern.partition(".")
    return f"wamp.{rest}" if dot else "wamp"


class _RoleIndex:
    __slots__ = ("name", "disclose", "general", "reserved")

    def __init__(self, role: _Role) -> None:
        self.name = role.name
        self.disclose = bool(role.disclose)
        self.general = _PatternIndex(role.permissions)
        self.reserved = _PatternIndex(p for p in role.permissions if _names_wamp(p))

    def lookup(self, uri: str, reserved: bool) -> _Permission | None:
        return (self.reserved if reserved else self.general).lookup(uri)

    def pattern_verdict(self, action: str, pattern: str, match: str) -> bool | None:
        """
        L{_PatternIndex.pattern_verdict} over the whole pattern: the general
        permissions for all of it (conservatively, its wamp.* part too), and
        the permissions naming C{wamp} for its wamp.* part.
        """
        verdicts = []
        if not (match == "prefix" and pattern.startswith("wamp.")) and not (
            match == "wildcard" and pattern.split(".", 1)[0] == "wamp"
        ):
            verdicts.append(self.general.pattern_verdict(action, pattern, match))
        if pattern_overlaps_reserved(pattern, match):
            verdicts.append(self.reserved.pattern_verdict(action, _reserved_part(pattern, match), match))
        if False in verdicts:
            return False
        return None if None in verdicts else True
