"""
Asking a realm's dynamic authenticator, and checking what it answers: a
failure or a malformed answer is logged and refused as any wrong credential is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.auth._types import AUTHENTICATION_FAILED, Accept, Deny, HelloInfo

__all__ = ["AUTH_FAILED", "DynamicAnswers"]

_log = Logger(namespace="wampd.auth")

AUTH_FAILED = Deny("authentication failed", AUTHENTICATION_FAILED)
"""The one answer to every refused credential."""


class DynamicAnswers:
    """
    What L{router.auth.RealmAuthenticator} does with its dynamic
    authenticator: it has C{dynamic}, C{dynamic_name} and C{realm}.
    """

    dynamic: Any
    dynamic_name: str
    realm: str

    def _ask(
        self,
        hello: HelloInfo,
        method: str,
        signature: str | None,
        answer: Callable[[object], Any],
    ) -> Any:
        """
        Call the dynamic authenticator and turn its result into ours with
        C{answer}; synchronous results stay synchronous.  Any failure is
        logged and becomes L{AUTH_FAILED}.
        """

        def failed(failure) -> Deny:
            _log.failure(
                "dynamic authenticator {name} failed on {method} for realm {realm} "
                "(authid {authid!r})",
                failure,
                name=self.dynamic_name,
                method=method,
                realm=self.realm,
                authid=hello.authid,
            )
            return AUTH_FAILED

        def safe_answer(result: object) -> Any:
            try:
                return answer(result)
            except Exception:
                return failed(Failure())

        try:
            result = self.dynamic(hello, method, signature)  # type: ignore[misc]
        except Exception:
            return failed(Failure())
        if inspect.isawaitable(result) and not isinstance(result, Deferred):
            result = Deferred.fromCoroutine(result)  # type: ignore[arg-type]
        if isinstance(result, Deferred):
            return result.addCallbacks(safe_answer, failed)
        return safe_answer(result)

    def _accept_or_deny(
        self, result: object, method: str, *, none_denies: bool = False
    ) -> Accept | Deny:
        if isinstance(result, Deny):
            return self._checked_deny(result)
        if isinstance(result, Accept):
            if (
                isinstance(result.authid, str)
                and result.authid
                and isinstance(result.authrole, str)
                and result.authrole
                and isinstance(result.authmethod, str)
                and isinstance(result.authprovider, str)
                and (result.authextra is None or isinstance(result.authextra, Mapping))
            ):
                if result.authprovider == "static":
                    result = replace(result, authprovider="dynamic")
                return result
        if result is None and none_denies:
            return AUTH_FAILED
        self._bad_answer(method, result, "Accept or Deny")
        return AUTH_FAILED

    def _checked_deny(self, deny: Deny) -> Deny:
        if isinstance(deny.message, str) and isinstance(deny.uri, str) and deny.uri:
            return deny
        self._bad_answer("deny", deny, "Deny(message: str, uri: str)")
        return AUTH_FAILED

    def _bad_answer(self, method: str, result: object, wanted: str) -> None:
        _log.error(
            "dynamic authenticator {name} returned {result!r} for {method} on realm "
            "{realm}; expected {wanted}: refused",
            name=self.dynamic_name,
            result=result,
            method=method,
            realm=self.realm,
            wanted=wanted,
        )
