"""The built-in checkers of node-healthcheck, one package per family.

Each checker is registered through the ``healthcheck`` entry-point group exactly as a
third-party plugin is, and imports only the public API of :mod:`healthcheck` and the SDK
(:mod:`healthcheck.sdk`); code only one family uses lives in that family's package.
"""
