"""Example applications for wampd (importable as ``examples.<name>`` with the checkout on PYTHONPATH)."""
