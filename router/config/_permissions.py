"""Roles and their permissions: what a realm's sessions may do on which URIs."""

from __future__ import annotations

from dataclasses import dataclass

from router.config._errors import ConfigError, _check_bool, _check_items, _check_name, _check_str
from router.uri import is_valid_uri

__all__ = ["ACTIONS", "MATCH_POLICIES", "PermissionConfig", "RoleConfig"]

ACTIONS = ("call", "register", "publish", "subscribe")
"""The actions a permission grants."""
MATCH_POLICIES = ("exact", "prefix", "wildcard")
"""How a permission's C{uri} is matched."""


def _is_uri(value: str) -> bool:
    """
    A WAMP URI in the spec's loose form: dot-separated, non-empty components
    without whitespace, "." or "#" (L{router.uri.is_valid_uri}, whose C{$}
    also lets one trailing newline through: not here).
    """
    return is_valid_uri(value) and not value.endswith("\n")


def _is_wamp_pattern(uri: str, match: str) -> bool:
    """
    Whether a permission names C{wamp.*} URIs explicitly: its first URI
    component is literally C{wamp} (for a prefix: C{"wamp"} or C{"wamp.…"}).
    Only such permissions can let a client call or subscribe to a
    C{wamp.*} URI.
    """
    if match == "prefix":
        return uri == "wamp" or uri.startswith("wamp.")
    return uri.split(".", 1)[0] == "wamp"


@dataclass(frozen=True)
class PermissionConfig:
    """
    What a role may do on the URIs a pattern matches.

    C{match} is C{exact}, C{prefix} (plain string prefix: C{"news."} matches
    C{"news.sport"} but not C{"news"}; C{""} matches every URI) or
    C{wildcard} (dot-separated components, an empty component matches any
    one component: C{"com..update"} matches C{"com.user.update"}).
    """

    uri: str
    match: str = "exact"
    call: bool = False
    register: bool = False
    publish: bool = False
    subscribe: bool = False
    disclose: bool | None = None
    """
    Disclose the caller's (call) or publisher's (publish) identity even when
    it did not ask with C{disclose_me}.  C{None}: the role's C{disclose}.
    """

    def __post_init__(self) -> None:
        uri = _check_str("uri", self.uri)
        match = _check_str("match", self.match)
        if match not in MATCH_POLICIES:
            raise ConfigError(
                "match", f"must be one of {', '.join(MATCH_POLICIES)}, got {match!r}"
            )
        if any(c.isspace() or c == "#" for c in uri):
            raise ConfigError("uri", f"must not contain whitespace or '#', got {uri!r}")
        if match == "exact" and not _is_uri(uri):
            raise ConfigError(
                "uri",
                "an exact URI must be dot-separated, non-empty components, "
                f"got {uri!r}",
            )
        if match == "wildcard" and "." not in uri:
            raise ConfigError(
                "uri",
                "a wildcard URI needs at least two components (an empty "
                f"component matches any one component), got {uri!r}",
            )
        for action in ACTIONS:
            _check_bool(action, getattr(self, action))
        if self.disclose is not None:
            _check_bool("disclose", self.disclose)
        if _is_wamp_pattern(uri, match):
            for action in ("register", "publish"):
                if getattr(self, action):
                    raise ConfigError(
                        action,
                        f"clients can never {action} wamp.* URIs (they are "
                        f"reserved for the router), got uri {uri!r}",
                    )

    @property
    def names_wamp(self) -> bool:
        """Whether this permission names C{wamp.*} URIs explicitly."""
        return _is_wamp_pattern(self.uri, self.match)


@dataclass(frozen=True)
class RoleConfig:
    """A role and its permissions (C{[[realm.role]]})."""

    name: str
    permissions: tuple[PermissionConfig, ...] = ()
    disclose: bool = False
    """
    Disclose this role's identity as caller/publisher even when it did not
    ask with C{disclose_me}, unless the matching permission says otherwise.
    """

    def __post_init__(self) -> None:
        _check_name("name", self.name)
        permissions = _check_items(
            "permissions", self.permissions, PermissionConfig, allow_empty=True
        )
        seen: dict[tuple[str, str], int] = {}
        for index, permission in enumerate(permissions):
            pattern = (permission.uri, permission.match)
            if pattern in seen:
                raise ConfigError(
                    f"permissions[{index}].uri",
                    f"duplicate {permission.match} uri {permission.uri!r} "
                    f"(also in permissions[{seen[pattern]}])",
                )
            seen[pattern] = index
        object.__setattr__(self, "permissions", permissions)
        _check_bool("disclose", self.disclose)
