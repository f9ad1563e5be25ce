"""The node-healthcheck SDK: the helpers a checker may use, built-in or third-party.

Each public module here is documented in ``docs/sdk.md``, and is stable only where that page
says so; a module or name with a leading underscore is private.
Importing this package imports nothing else, so a one-shot check pays only for the helpers it
uses.
"""
