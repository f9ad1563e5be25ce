"""The drop-in ``health-checker`` command (NPD's ``cmd/healthchecker``)."""
