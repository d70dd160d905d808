"""
How a standalone :class:`~router.service.RouterService` answers signals:
SIGTERM and SIGINT stop it gracefully with exit status 0, SIGHUP reloads its
configuration.
"""

from __future__ import annotations

import signal

from twisted.logger import Logger

__all__ = ["SignalHandling"]

_log = Logger(namespace="wampd.service")


class SignalHandling:
    """Mixed into RouterService (``reactor`` is the service's)."""

    def _install_signal_handlers(self) -> None:
        """
        SIGTERM and SIGINT stop the reactor (and so this service,
        gracefully) without twistd re-raising the signal afterwards: a
        graceful shutdown exits with status 0, which is what process
        supervisors expect.  SIGHUP reloads the configuration (:meth:`reload`);
        Twisted itself takes no SIGHUP (twistd reopens its log file on SIGUSR1).
        """
        def stop(signum, frame):
            self.reactor.callFromThread(self._stop_reactor, signal.Signals(signum).name)

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.reactor.callFromThread(self.reload))

    def reload(self):
        """
        Read the configuration again (``reload_source``) and apply it, or
        refuse it whole and keep the running one (see :mod:`router.reload`).
        Returns the ``server_reloaded`` event, or None when refused.
        """
        from router.reload import reload_service  # lazy: only on a reload

        return reload_service(self)

    def _stop_reactor(self, name: str) -> None:
        _log.info("received {signal}: shutting down gracefully", signal=name)
        if self.reactor.running:
            self.reactor.stop()
