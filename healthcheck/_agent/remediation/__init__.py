"""Remediation: from a node condition to a tainted, cordoned, drained (or repaired) node, and back.

Off unless the agent's YAML has a ``remediation:`` section. Modules, one job each:

- :mod:`.config`: the ``remediation:`` key, validated (one line naming the key, exit 2);
- :mod:`.rules`: the per-rule state machine, pure (time is an argument);
- :mod:`.slots`: the fleet budget, one ``coordination.k8s.io`` Lease per slot;
- :mod:`.node`: taint, cordon and their undo on the Node, with ownership in an annotation;
- :mod:`.drain`: evictions through the Eviction API, PDB refusals retried with backoff;
- :mod:`.api`: the extra API calls, through the official client;
- :mod:`.metrics`: Prometheus collectors;
- :mod:`.store`: the Node as last read and the rule states (on the Node, or in memory when dry);
- :mod:`.actions`: carrying out a step, with its Event;
- :mod:`.waiting`: taking the slot, and the wait for one;
- :mod:`.controller`: the loop that ties them together, one per node;
- :mod:`.wiring` and :mod:`.local`: the hooks into the agent and ``healthcheck status``.

Nothing here is imported unless remediation is configured.
"""
