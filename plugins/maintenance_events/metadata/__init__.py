"""Cloud instance metadata: maintenance events from Alibaba ECS, AWS, Azure and GCP.

One module per provider holds that provider's endpoint, headers, defaults and a ``parse(body)``
that turns any bytes into a :class:`~.events.Reading` without raising.
:mod:`.fetch` talks HTTP (tokens included), :mod:`.detect` reads DMI, :mod:`.hostlog` writes the
cloud-assistant plug-in's ``host_event.log``.
"""

PROVIDERS = ("alibaba", "aws", "azure", "gcp")


def provider_module(name: str):
    """The module of provider ``name`` (imported on demand: a check pays only for its own)."""
    if name not in PROVIDERS:
        raise ValueError(f'unknown provider "{name}": use one of {", ".join(PROVIDERS)}')
    import sys

    module = f"healthcheck_plugins.maintenance_events.metadata.{name}"
    __import__(module)  # not importlib.import_module: importlib's package costs ~0.3 ms
    return sys.modules[module]
