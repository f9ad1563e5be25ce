"""The log-counter family: how often did a pattern appear in the journal within a window?

The checker, its counting buffer and time windows, and the drop-in ``log-counter`` command in
:mod:`.cmd` (NPD's ``cmd/logcounter`` beside ``pkg/logcounter``).
"""
