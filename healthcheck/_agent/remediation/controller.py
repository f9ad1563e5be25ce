"""The remediation loop of one node: observe, decide (:mod:`.rules`), take a slot, act, undo.

Cost at rest: nothing. Our own conditions come from the agent's condition table; the Node is
read once at start, then only while a rule is due or active, or every ``pollInterval`` when a
rule names another reporter's condition (the kubelet's ``Ready``, NPD's ``KernelDeadlock``).
While active, each tick reads the Node once and writes only what changes; every write is a
merge patch conditional on the Node's resourceVersion and carries our record (what we did).

Events go through the agent's reporter (so through client-go's correlator), one per step:
started, waiting for a slot, tainted, cordoned, evicted N pods, blocked by PDB X, drain done or
timed out (with the pods left), repaired, undone. In a dry run (``--dry-run``, or
``dryRun`` globally or per rule) the same steps are logged and recorded as Events saying what
would be done, and nothing is written: no patch, no eviction, no Lease, no repair.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from healthcheck._agent.clock import Clock, rfc3339
from healthcheck._agent.conditions import Event
from healthcheck._agent.kube import ApiError
from healthcheck._agent.loop import StepLoop
from healthcheck._agent.remediation import rules as r
from healthcheck._agent.remediation.actions import Actions, Descriptions, Repairs
from healthcheck._agent.remediation.api import RemediationApi
from healthcheck._agent.remediation.config import RemediationConfig, Rule
from healthcheck._agent.remediation.metrics import RemediationMetrics
from healthcheck._agent.remediation.slots import Budget
from healthcheck._agent.remediation.store import Conflict, NodeStore
from healthcheck._agent.remediation.waiting import SlotWait
from healthcheck._agent.scheduler import Report
from healthcheck.sdk.text import one_line

ACTIVE_TICK = 1.0
IDLE_TICK = 3600.0
ERROR_BYTES = 300

_log = logging.getLogger(__name__)

# own(condition type): None when not one of ours, else (status or None while unknown, since)
Own = Callable[[str], tuple[str | None, float] | None]


class Controller(StepLoop):
    """Remediation for one node. ``own(ctype)`` answers for our own condition types:
    ``None`` when not ours, else ``(status or None while unknown, since)``.
    ``repairs`` maps a condition type to a callable that runs the check's repair and returns
    the policy's one-line account; ``describe_repair`` maps it to what that would do."""

    loop_name = "remediation"

    def __init__(
        self,
        config: RemediationConfig,
        api: RemediationApi,
        node: str,
        *,
        emit: Callable[[Event], object],
        clock: Clock,
        own: Own = lambda ctype: None,
        repairs: Repairs | None = None,
        describe_repair: Descriptions | None = None,
        dry_run: bool = False,
        metrics: RemediationMetrics | None = None,
        active_tick: float = ACTIVE_TICK,
        drain_backoff: tuple[float, float] = (1.0, 30.0),
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.node = node
        self.emit_event = emit
        self.clock = clock
        self.own = own
        self.dry_run = dry_run or config.dry_run
        self.metrics = metrics
        self.active_tick = active_tick
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.budget = Budget(
            api,
            config.namespace,
            node,
            max_concurrent=config.max_concurrent,
            max_percent=config.max_percent,
            lease_duration=config.lease_duration,
            min_interval=config.min_interval,
            monotonic=clock.monotonic,
            wall=clock.time,
            rng=self._rng,
        )
        self.store = NodeStore(api, node, clock, self._dry)
        self.actions = Actions(
            config,
            self.store,
            api,
            node,
            emit=lambda event: self.emit_event(event),  # late-bound: callers may wrap it
            is_dry=self._dry,
            on_phase=self._phase,
            clock=clock,
            repairs=repairs,
            describe_repair=describe_repair,
            metrics=metrics,
            drain_backoff=drain_backoff,
        )
        self.foreign = [rule for rule in config.rules if own(rule.condition) is None]
        self._configured = {rule.name for rule in config.rules}
        self._orphans_told: set[str] = set()
        self._lock = threading.Lock()
        self._not_before: dict[str, float | None] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.waiting = SlotWait(
            self.budget,
            self.actions.emit,
            metrics,
            min(15.0, max(active_tick, config.lease_duration / 3)),
            self._rng,
        )
        self.failures = 0
        self.conflicts = 0
        self.last_error = ""
        self.phases: dict[str, dict[str, Any]] = {
            rule.name: {"phase": r.IDLE} for rule in config.rules
        }

    # ------------------------------------------------------------------ inputs (any thread)

    def observe(self, report: Report) -> None:
        """A check's report: keep the not-before time it gave as data, and look again now."""
        spec = report.spec
        if not spec.permanent or not any(
            rule.condition == spec.condition for rule in self.config.rules
        ):
            return
        data = getattr(report.result, "data", None)
        value = data.get("not_before") if isinstance(data, dict) else None
        # A plugin's data is not trusted: NaN, infinities and times outside 1970..5138 read as
        # unknown (act at once), as a missing time does.
        not_before: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            not_before = float(value) if 0 <= value < r.MAX_EPOCH else None
        with self._lock:
            self._not_before[spec.condition] = not_before
        self._wake.set()

    def snapshot(self) -> dict[str, Any]:
        """The node's remediation state, for ``/conditions`` and ``healthcheck status``."""
        with self._lock:
            held = self.budget.held
            return {
                "dryRun": self.dry_run,
                "slot": (held.get("metadata") or {}).get("name") if held else None,
                "waiting": self.waiting.why if self.waiting.since is not None else None,
                "lastError": self.last_error or None,
                "rules": [{"name": name, **state} for name, state in self.phases.items()],
            }

    # ------------------------------------------------------------------------ observation

    def _dry(self, rule: Rule) -> bool:
        return self.dry_run or rule.dry_run

    def _observe(self, rule: Rule, now: float) -> r.Observation:
        view = self.store.view
        node_age = now - view.created if view and view.created else None
        mine = self.own(rule.condition)
        if mine is not None:
            status, since = mine
        else:
            status, since = view.condition(rule.condition) if view else (None, 0.0)
        with self._lock:
            not_before = self._not_before.get(rule.condition)
        return r.Observation(status, since, not_before, node_age)

    def _state(self, rule: Rule) -> r.RuleState | None:
        return self.store.state(rule)

    def _evaluate(self, now: float) -> list[tuple[Rule, r.Step]]:
        return [
            (
                rule,
                r.evaluate(
                    rule,
                    self._observe(rule, now),
                    self._state(rule),
                    now,
                    self.config.node_grace,
                ),
            )
            for rule in self.config.rules
        ]

    # ----------------------------------------------------------------------------- output

    def _phase(self, rule: Rule, phase: str, message: str = "") -> None:
        with self._lock:
            self.phases[rule.name] = {"phase": phase, "message": message}
        if self.metrics is not None:
            self.metrics.active.labels(rule.name).set(0 if phase in (r.IDLE, r.PENDING) else 1)

    # ------------------------------------------------------------------------- the budget

    def _needs_slot(self, rule: Rule, step: r.Step, state: r.RuleState | None) -> bool:
        if self._dry(rule):
            return False
        if step.kind in (r.START, r.ACT):
            return True
        return r.holds_marks(state) or (
            state is not None and state.repaired_at is not None and "repair" in state.done
        )

    # ------------------------------------------------------------------------------- step

    def step(self) -> float:
        """Do what is due; return seconds until the next look."""
        try:
            wait = self._step()
        except Conflict:
            # The Node changed between our read and our write (our own status PATCH, the
            # kubelet, an operator): read it again and decide afresh, after a short pause.
            # Doubling on each conflict in a row: something rewriting the Node constantly
            # (a controller fighting us) costs a few requests a minute, not a hot loop.
            self.store.view = None
            self.conflicts += 1
            return self._rng.uniform(0.05, 0.2) * 2.0 ** min(self.conflicts - 1, 6)
        except ApiError as exc:
            return self._failed(str(exc))
        except Exception as exc:  # a bug (ours, a plugin's) must not end the loop
            return self._failed(f"unexpected error: {type(exc).__name__}: {exc}")
        self.failures = 0
        self.conflicts = 0
        self.last_error = ""
        if self.metrics is not None:
            self.metrics.slot_held.set(1 if self.budget.held is not None else 0)
            self.metrics.waiting.set(1 if self.waiting.since is not None else 0)
        return wait

    def _polls(self) -> bool:
        """Whether the Node is read every ``pollInterval``: for another reporter's condition,
        and while a live rule is active (to see an operator's uncordon, see :meth:`_read`)."""
        return bool(self.foreign) or any(
            not self._dry(rule) and self._state(rule) is not None for rule in self.config.rules
        )

    def _read(self) -> None:
        """Read the Node. A Node we cordoned found schedulable was uncordoned by someone else
        (our own uncordon clears the record in the same patch): the cordon is no longer ours,
        and that is written down at once, so a later cordon of theirs is never undone by us."""
        view = self.store.read()
        orphans = sorted(set(view.record.rules) - self._configured - self._orphans_told)
        if orphans:
            # A rule removed or renamed in the config: nothing here knows its condition any
            # more, so what it did is left alone, said once, for a person to undo.
            self._orphans_told.update(orphans)
            self.actions.emit(
                "Warning",
                "RemediationOrphaned",
                f"the node's record holds rule(s) no longer configured: {', '.join(orphans[:10])};"
                " their taint or cordon stays until removed by hand",
            )
        if view.record.cordoned and not view.unschedulable and not self.dry_run:
            self.store.disown_cordon()
            self.actions.emit(
                "Warning",
                "CordonOverridden",
                "the node was uncordoned by someone else while remediating: it is left as it "
                "is, and no cordon will be undone by this remediation",
            )

    def _failed(self, why: str) -> float:
        """A failed step: log it (one bounded line), forget the Node as read, and back off
        exponentially (0.5 s doubling to 30 s, jittered) so a failing server is never hammered;
        while a slot is held, at most a third of the lease, so the slot is still renewed."""
        self.failures += 1
        self.last_error = one_line(why, ERROR_BYTES)
        _log.warning("remediation: %s", self.last_error)
        self.store.view = None
        wait = min(30.0, 0.5 * 2.0 ** min(self.failures, 6)) * self._rng.uniform(0.5, 1.0)
        if self.budget.held is not None:
            # Still renew while failing (a pod list or Node patch refused): a slot that lapses
            # while our marks stay on the node would let one more node start than allowed.
            wait = min(wait, self.config.lease_duration / 3)
        return wait

    def _do(self, rule: Rule, step: r.Step, now: float) -> bool:
        """Carry out one step; ``True`` when the rule should be looked at again at once."""
        kind = step.kind
        if kind == r.START:
            return self.actions.act(rule, self.actions.start(rule, now), rule.actions[0], now)
        state = self._state(rule)
        if state is None:  # evaluate() asks for the steps below only of an active rule
            return False
        if kind == r.ACT:
            return self.actions.act(rule, state, step.action, now)
        if kind == r.REPAIR_FAILED:
            self.actions.repair_failed(rule, state, now)
        elif kind == r.UNDO:
            self.actions.undo(rule, state)
        return False

    def _step(self) -> float:
        now = self.clock.time()
        mono = self.clock.monotonic()
        read = False
        if self.store.view is None or (
            self._polls() and mono - self.store.polled >= self.config.poll_interval
        ):
            self._read()
            read = True
        steps = self._evaluate(now)
        wanted = any(self._needs_slot(rule, s, self._state(rule)) for rule, s in steps)
        have_slot = self.waiting.take(mono) if wanted else False
        if not wanted and self.waiting.since is not None:
            self.waiting.stop(mono)  # e.g. the condition cleared before a slot came

        def writes(step: r.Step, rule: Rule) -> bool:
            if step.kind in (r.UNDO, r.REPAIR_FAILED):
                return True
            return step.kind in (r.START, r.ACT) and (have_slot or self._dry(rule))

        if not read and any(writes(s, rule) for rule, s in steps):
            self._read()  # act on the node as it is now, not as it was; not while waiting
        wakes: list[float] = []
        for rule in self.config.rules:
            for _ in range(len(rule.actions) + 2):  # at least once: `step` is always set
                step = r.evaluate(
                    rule, self._observe(rule, now), self._state(rule), now, self.config.node_grace
                )
                if step.kind in (r.START, r.ACT) and not have_slot and not self._dry(rule):
                    break
                if not self._do(rule, step, now):
                    break
            state = self._state(rule)
            if step.kind in (r.START, r.ACT) and not have_slot and not self._dry(rule):
                self._phase(rule, "waiting", self.waiting.why)
                wakes.append(self.waiting.retry_at - mono)
                continue
            if step.kind == r.ACT and step.action == "drain":
                wakes.append(self.active_tick)
            elif step.wake is not None:
                wakes.append(step.wake - now)
            if not (step.kind == r.ACT and step.action == "drain"):
                self._phase(
                    rule,
                    self._phase_name(rule, step.kind, state),
                    self._phase_message(rule, step, state),
                )
        steps = self._evaluate(now)
        if self.budget.held is not None and not any(
            self._needs_slot(rule, s, self._state(rule)) for rule, s in steps
        ):
            self.budget.release()
            # logged only: Events of one source share client-go's spam budget (25, then 1/5 min)
            _log.info("remediation: slot released")
        if self.budget.held is not None:
            wakes.append(self.budget.renew_due - mono)
        if self._polls():
            wakes.append(self.config.poll_interval - (mono - self.store.polled))
        return max(0.0, min([IDLE_TICK, *wakes]))

    def _phase_name(self, rule: Rule, kind: str, state: r.RuleState | None) -> str:
        if state is None:
            return kind if kind == r.PENDING else r.IDLE
        if state.hold_until is not None and "repair" not in state.done:
            return "hold"
        if all(a in state.done for a in rule.actions):
            return "done"
        return "acting"

    def _phase_message(self, rule: Rule, step: r.Step, state: r.RuleState | None) -> str:
        if state is None:
            if step.kind == r.PENDING and step.wake is not None:
                return f"acting at {rfc3339(step.wake)}"
            return ""
        done = ", ".join(state.done) or "nothing yet"
        return f"{'dry run, ' if self._dry(rule) else ''}done: {done}"

    # ------------------------------------------------------------------------- the thread

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loop. The slot is *kept* (it expires by itself): a restarted agent carries on
        with it, and a node going down mid-drain still frees it after one lease duration."""
        super().stop(timeout)
