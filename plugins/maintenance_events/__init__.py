"""The maintenance-events family: scheduled cloud maintenance of this instance.

The checker, the cloud metadata clients in :mod:`.metadata`, and the ``host-event-log``
subcommand that writes the cloud-assistant plug-in's ``host_event.log``.
"""
