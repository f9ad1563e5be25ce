"""The built-in checkers of node-healthcheck.

Each module is one checker, registered through the ``healthcheck`` entry-point group exactly as
a third-party plugin is, and importing only the public API of :mod:`healthcheck`.
"""
