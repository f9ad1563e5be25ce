"""The agent: schedules checkers in-process and reports NodeConditions, Events and metrics.

Modules, one job each: :mod:`config` (YAML, strict validation), :mod:`scheduler` (intervals,
jitter, no self-overlap, hung checks), :mod:`conditions` (NPD's state machine),
:mod:`events` (client-go's event correlator), :mod:`kube` (the official client),
:mod:`dryrun` (``--dry-run``: writes and repairs printed, none made),
:mod:`reporter` (one PATCH per change, heartbeat, backoff, bounded event queue),
:mod:`metrics` (Prometheus), :mod:`server` (``/healthz``, ``/conditions``), :mod:`programs`
(external programs, NPD's "custom plugins") and :mod:`main` (wiring, signals, ``--once``,
the one log handler).

Nothing here is imported on the one-shot path: the CLI imports :mod:`main` lazily. Inside,
modules import at the top, except what loads prometheus_client (metrics, only for the
long-running agent) or remediation (only when configured). Diagnostics go through
``logging.getLogger(__name__)``; :func:`main.configure_logging` gives the ``healthcheck._agent``
logger its one stderr handler.
"""
