"""``python -m router``: the ``wampd`` command, for a checkout that was not installed."""

from router.cli import console

console()
