"""
Remote procedure calls for one realm.

* Caller identification: CALL ``disclose_me``, or REGISTER ``disclose_caller``
  from the callee, puts ``caller``, ``caller_authid`` and ``caller_authrole``
  in the INVOCATION details.
* Pattern-based registrations (exact, prefix, wildcard) routed by the spec's
  precedence (:meth:`router.matching.PatternIndex.best`); the concrete
  procedure goes to the callee in ``INVOCATION.Details.procedure``.
* Shared registrations: ``invoke`` = single, roundrobin, random, first, last.
  A REGISTER whose policy differs from the existing registration's gets
  ``wamp.error.procedure_exists_with_different_invocation_policy`` (Autobahn's
  URI, Crossbar's answer); a second ``single`` REGISTER gets
  ``wamp.error.procedure_already_exists``.
* Progressive call results (``receive_progress`` / YIELD ``progress``; forwarded
  to every callee announcing ``progressive_call_results``, with or without
  ``call_canceling``, as Crossbar and nexus do) and
  progressive call invocations (CALL ``progress``: every chunk with the same
  request id goes to the same callee as INVOCATIONs with one request id).
* Cancellation: CANCEL ``skip``, ``kill``, ``killnowait`` (default
  ``killnowait``); a callee that did not announce ``call_canceling`` is
  treated as ``skip``.
* Call timeouts in milliseconds (CALL ``timeout``): ``wamp.error.timeout`` to
  the caller and INTERRUPT to a callee that supports cancellation.  With
  progressive results the timeout runs from one result to the next.
* Every CALL ends in RESULT or ERROR, whatever happens to the callee (or
  inside the router: :meth:`Dealer.end_call`, :meth:`Dealer.end_invocation`); a
  caller that leaves gets its calls dropped (callees that support it get
  INTERRUPT) and late YIELDs are dropped quietly.
* ``wamp.*`` procedures are the router's own (the meta API): clients cannot
  register them.
"""

from router.dealer._calls import PendingCall
from router.dealer._dealer import INVOKE_POLICIES, Dealer, Registration

__all__ = ["Dealer", "Registration", "PendingCall", "INVOKE_POLICIES"]
