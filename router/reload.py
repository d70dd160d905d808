"""
Reloading a running router's configuration (SIGHUP, or ``RouterService.reload()``).

The new configuration is read (twistd: the ``--config`` file again, with the
command line on top, as at start) and checked whole first: the TOML, every
value, and every realm's dynamic authenticator and authorizer plugin.  If
anything is wrong, nothing changes: every error is logged (namespace
``wampd.reload``) and the running configuration stays.

What a reload applies, without dropping a connection:

* **Realms.** A new realm serves joins at once.  A changed realm's auth
  methods, principals and authenticator apply to the next joins; its roles,
  permissions and authorizer apply to the next message of every session,
  joined ones included (a session of a realm that gains its first role is
  checked from then on).  Sessions keep their authid and role: removing a
  principal does not end its sessions (``wamp.session.kill_by_authid`` does).
  **A removed realm** is closed: its calls in flight end with ERROR
  ``wamp.error.canceled``, each of its sessions is sent GOODBYE
  ``wamp.close.close_realm`` (the connection stays, and may join another
  realm), and a join still in progress is refused with ABORT
  ``wamp.error.no_such_realm``.
* **``[router]`` keys**: the connection policy (origins, addresses, connection
  limits) and the HELLO timeout for new connections; ``max_message_size``,
  ``max_outbound_buffer``, ``slow_consumer`` and ``max_nesting_depth`` for
  connections accepted from then on; pings, listener timeout, retention,
  ``max_calls_in_flight``, ``max_queued_messages``, ``shutdown_timeout``,
  ``trusted_proxies`` and ``forwarded_header`` at once.  Changing an
  ``auth_fail_*`` key starts the failed-login counts afresh.
* **A listen endpoint's ``path``** (WebSocket), for the next upgrades.

What needs a restart, logged as such (the rest of the reload still applies):
adding or removing a ``[[listen]]`` endpoint or changing its ``transport`` or
``proxy_protocol`` (the sockets stay as they are: rebinding could fail half
way, and a port that moves strands its clients), ``[[listener]]`` plugins
(a new listener would see connections it never saw open), ``[[app]]``,
``[http]`` and ``default_listener``.  A realm added by a reload serves no
App's procedures or topic handlers until a restart.

Every applied reload fires ``server_reloaded`` with the changed key paths.
"""

from __future__ import annotations

import dataclasses

from twisted.logger import Logger

from router.auth import LoginLimiter
from router.config import ConfigError, RouterConfig
from router.config._diff import RESTART_ONLY, config_changes
from router.config.auth import build_realm_auth
from router.events import ServerReloaded
from router.policy import ConnectionPolicy
from router.wire.codec import codecs

__all__ = ["apply_config", "reload_service"]

_log = Logger(namespace="wampd.reload")

_APPLIED_LISTEN_KEYS = ("path",)
_AUTH_FAIL = ("auth_fail_window", "auth_fail_limit_authid", "auth_fail_limit_address", "auth_fail_tracked")


def reload_service(service) -> ServerReloaded | None:
    """Read the configuration from ``service.reload_source`` and apply it (or refuse it, logged)."""
    source = service.reload_source
    if source is None:
        _log.warn("reload asked for, but this router has no configuration source to read again; nothing changed")
        return None
    _log.info("reloading the configuration")
    try:
        config = source()
    except Exception as exc:
        _refused(_errors_of(exc))
        return None
    return apply_config(service, config)


def _errors_of(exc: BaseException) -> list[str]:
    nested = getattr(exc, "errors", None) or getattr(exc, "exceptions", None)
    if nested:
        return [str(error) for error in nested]
    return [str(exc) or type(exc).__name__]


def _refused(errors: list[str]) -> None:
    _log.error(
        "configuration reload refused, the running configuration stays ({count} error(s))", count=len(errors)
    )
    for error in errors:
        _log.error("reload error: {error}", error=error)


def apply_config(service, config: RouterConfig) -> ServerReloaded | None:
    """
    Apply ``config`` to a running :class:`router.service.RouterService`, or
    refuse it whole (logged, None).  Returns the ``server_reloaded`` event.
    """
    old = service.config
    before = {realm.name: realm for realm in old.realms}
    errors, auth = [], {}
    for index, realm in enumerate(config.realms):
        if before.get(realm.name) == realm:
            continue
        try:
            auth[realm.name] = build_realm_auth(realm, service.reactor)
        except ConfigError as exc:
            errors.append(str(exc.under(f"realm[{index}]")))
        except Exception as exc:  # a plugin that fails as it loads: the reload fails closed
            errors.append(f"realm[{index}]: {exc}")
    try:
        running = _running(old, config)
    except ConfigError as exc:  # e.g. trusted_proxies emptied under a running proxy_protocol endpoint
        errors.append(f"{exc} (with the running [[listen]] endpoints, which a reload does not change)")
    if errors:
        _refused(errors)
        return None

    changed = config_changes(old, config)
    not_applied = [path for path in changed if _needs_restart(path)]
    router = service.router
    after = {realm.name for realm in config.realms}
    removed = [name for name in before if name not in after]
    added = [realm.name for realm in config.realms if realm.name not in before]
    for name in removed:
        _close_realm(router, name)
    for realm in config.realms:
        if realm.name in added:
            router.add_realm(realm.name, *auth[realm.name])
        elif realm.name in auth:
            router.realms[realm.name].reconfigure(*auth[realm.name])
    _apply_router_keys(service, old, config)
    service.config = running

    if not_applied:
        _log.warn(
            "changed in the configuration but not applied (restart to apply): {paths}", paths=", ".join(not_applied)
        )
    event = ServerReloaded(tuple(changed), tuple(added), tuple(removed), tuple(not_applied))
    router.dispatcher.emit(event)
    return event


def _needs_restart(path: str) -> bool:
    head = path.split("[", 1)[0].split(".", 1)[0]
    if path == "router.default_listener" or head in RESTART_ONLY and head != "listen":
        return True
    if head == "listen":
        key = path.rpartition("].")[2] if "]." in path else None
        return key not in _APPLIED_LISTEN_KEYS
    return False


def _close_realm(router, name: str) -> None:
    realm = router.realms.pop(name)
    text = "the realm was removed from the router's configuration"
    realm.dealer.cancel_all(text)
    if realm.topic_hooks is not None:
        realm.topic_hooks.stop()
    sessions = list(realm.sessions.values())
    for session in sessions:
        session.goodbye("wamp.close.close_realm", text)
    _log.info("realm {realm} removed: {count} session(s) sent GOODBYE", realm=name, count=len(sessions))


def _apply_router_keys(service, old: RouterConfig, new: RouterConfig) -> None:
    router = service.router
    router.policy = ConnectionPolicy(
        allowed_origins=new.allowed_origins,
        allow_addresses=new.allow_addresses,
        deny_addresses=new.deny_addresses,
        max_connections=new.max_connections,
        max_connections_per_address=new.max_connections_per_address,
    )
    router.hello_timeout = new.hello_timeout
    router.dispatcher.timeout = new.listener_timeout
    for name in ("max_nesting_depth", "max_retained_topics", "retained_ttl", "max_calls_in_flight", "max_queued_messages"):
        setattr(router, name, getattr(new, name))
    if any(getattr(old, name) != getattr(new, name) for name in _AUTH_FAIL):
        router.login_limiter = LoginLimiter(
            service.reactor,
            per_authid=new.auth_fail_limit_authid,
            per_address=new.auth_fail_limit_address,
            window=new.auth_fail_window,
            max_tracked=new.auth_fail_tracked,
        )
    sweeper = service.sweeper
    if (sweeper.interval, sweeper.timeout) != (new.ping_interval, new.ping_timeout):
        sweeper.interval, sweeper.timeout = new.ping_interval, new.ping_timeout
        if service.running:
            sweeper.stop()
            sweeper.start()
    trust = service.proxy_trust
    trust.update(new.trusted_proxies, new.forwarded_header)
    paths = {listen.endpoint: listen.path for listen in new.listen}
    for listen, factory in service.factories:
        factory.max_outbound_buffer = new.max_outbound_buffer
        factory.slow_consumer = new.slow_consumer
        if new.max_nesting_depth != old.max_nesting_depth:
            factory.codecs = codecs(router, None)
        if listen.transport == "websocket":
            factory.proxy_trust = trust if trust.enabled else None
            if listen.endpoint in paths:
                factory.path = paths[listen.endpoint]
            factory.setProtocolOptions(
                maxMessagePayloadSize=new.max_message_size,
                maxFramePayloadSize=new.max_message_size,
                openHandshakeTimeout=0 if new.hello_timeout > 0 else 10.0,
            )
        else:
            factory.set_max_message_size(new.max_message_size)


def _running(old: RouterConfig, new: RouterConfig) -> RouterConfig:
    """What now runs: ``new``, but with the parts that need a restart as they were (the next reload compares with it)."""
    paths = {listen.endpoint: listen for listen in new.listen}
    listen = tuple(
        dataclasses.replace(item, path=paths[item.endpoint].path)
        if item.endpoint in paths and paths[item.endpoint].transport == item.transport == "websocket"
        else item
        for item in old.listen
    )
    return dataclasses.replace(
        new,
        listen=listen,
        listeners=old.listeners,
        apps=old.apps,
        http=old.http,
        default_listener=old.default_listener,
    )
