"""Pluggable ranking strategies, one file each, registered by name.

Every public module in this package is imported when a strategy is first looked up, so a new
strategy is one new file with a class decorated ``@STRATEGIES.register("name")``.
See :mod:`tourney.strategy` for the protocol every strategy follows.
"""
