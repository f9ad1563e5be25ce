"""The drop-in ``log-counter`` command (NPD's ``cmd/logcounter``)."""
