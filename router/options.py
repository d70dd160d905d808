"""
What the router refuses in a request's known options and kwargs keys: pure
checks on decoded values (no bytes, no codec).  A leaf: it imports only
Autobahn and other leaves.  The wire (:mod:`router.wire.checks`) applies them
to every message it decodes; the meta API applies the PUBLISH rules to a
testament (``wamp.session.add_testament``), which is published later as if
its session had sent that PUBLISH.

* Known options of client requests: type and range (:func:`option_problem`).
* kwargs keys must be strings (:func:`key_problem`).
"""

from __future__ import annotations

from autobahn.wamp import message

from router.messages import MESSAGE_NAMES as _NAMES
from router.uri import MAX_ID

__all__ = ["MAX_ID", "MAX_TIMEOUT_MS", "BOOL_OPTIONS", "option_problem", "key_problem", "short"]

_CALL_CODE = message.Call.MESSAGE_TYPE
_YIELD_CODE = message.Yield.MESSAGE_TYPE
_PUBLISH_CODE = message.Publish.MESSAGE_TYPE

#: Largest CALL ``timeout`` accepted, in milliseconds (about 24.8 days, the
#: largest delay JavaScript timers take); larger values get invalid_argument.
MAX_TIMEOUT_MS = 2**31 - 1


def _is_bool(value) -> bool:
    return type(value) is bool


def _is_timeout(value) -> bool:
    return type(value) is int and 0 <= value <= MAX_TIMEOUT_MS


def _is_id_list(value) -> bool:
    return type(value) is list and all(type(v) is int and 0 < v <= MAX_ID for v in value)


def _is_str_list(value) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


def _is_str(value) -> bool:
    return type(value) is str


def _is_concurrency(value) -> bool:
    return type(value) is int and 0 < value <= 2**31 - 1


def _is_scheme(value) -> bool:
    return type(value) is str and value != ""


_BOOL = (_is_bool, "must be true or false")
_IDS = (_is_id_list, "must be a list of session IDs (integers from 1 to 2**53)")
_STRS = (_is_str_list, "must be a list of strings")
_STR = (_is_str, "must be a string")
#: Payload passthru mode (router.passthru): ``ppt_scheme`` names it, the others describe the payload.
_PPT = {
    "ppt_scheme": (_is_scheme, "must be a non-empty string"),
    "ppt_serializer": _STR,
    "ppt_cipher": _STR,
    "ppt_keyid": _STR,
}
#: Per message type: option -> (check, what it must be).  Unknown options are
#: ignored, as the spec asks; values Autobahn checks further (match, invoke,
#: mode) are checked here for type and by the broker/dealer for meaning.
_OPTION_RULES = {
    _CALL_CODE: {
        "timeout": (_is_timeout, f"must be an integer number of milliseconds from 0 to {MAX_TIMEOUT_MS}"),
        "receive_progress": _BOOL,
        "progress": _BOOL,
        "disclose_me": _BOOL,
        **_PPT,
    },
    _YIELD_CODE: {"progress": _BOOL, **_PPT},
    message.Error.MESSAGE_TYPE: _PPT,
    _PUBLISH_CODE: {
        "acknowledge": _BOOL,
        "exclude_me": _BOOL,
        "disclose_me": _BOOL,
        "retain": _BOOL,
        "exclude": _IDS,
        "eligible": _IDS,
        "exclude_authid": _STRS,
        "eligible_authid": _STRS,
        "exclude_authrole": _STRS,
        "eligible_authrole": _STRS,
        **_PPT,
    },
    message.Subscribe.MESSAGE_TYPE: {"match": _STR, "get_retained": _BOOL},
    message.Register.MESSAGE_TYPE: {
        "match": _STR,
        "invoke": _STR,
        "disclose_caller": _BOOL,
        "force_reregister": _BOOL,
        "concurrency": (_is_concurrency, "must be an integer from 1 to 2**31-1"),
    },
}


#: Per message type, the options whose only rule is "a boolean": a request
#: whose options are all of these, with boolean values, needs no further check
#: (the wire tests that inline, without calling :func:`option_problem`).
BOOL_OPTIONS = {
    code: frozenset(key for key, rule in rules.items() if rule is _BOOL) for code, rules in _OPTION_RULES.items()
}


def option_problem(code: int, options: dict):
    """Why one of a request's known options is unacceptable, or None."""
    rules = _OPTION_RULES.get(code)
    if rules is None:
        return None
    for key, value in options.items():
        rule = rules.get(key)
        if rule is not None and not rule[0](value):
            return f"option {key!r} of {_NAMES[code]} {rule[1]}, got {short(value)}"
    return None


def short(value) -> str:
    """``repr(value)`` cut to 40 characters, for error messages."""
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails (or is huge: ints past str's digit limit)
        text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def key_problem(kwargs) -> str | None:
    """Why a kwargs dict is refused (a key that is not a string), or None."""
    for key in kwargs:
        if type(key) is not str:
            return f"kwargs keys must be strings, got {short(key)} ({type(key).__name__})"
    return None
