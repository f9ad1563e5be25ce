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

import random
import threading

from healthcheck.agent.conditions import Event
from healthcheck.agent.kube import ApiError
from healthcheck.agent.remediation import rules as r
from healthcheck.agent.remediation.drain import Drainer
from healthcheck.agent.remediation.node import NodeView, patch_body
from healthcheck.agent.remediation.slots import Budget
from healthcheck.text import one_line

ACTIVE_TICK = 1.0
IDLE_TICK = 3600.0
EVENT_BYTES = 1000
LIST_SHOWN = 10


def _names(pods) -> str:
    pods = list(pods)
    shown = ", ".join(pods[:LIST_SHOWN])
    return shown + (f" (+{len(pods) - LIST_SHOWN} more)" if len(pods) > LIST_SHOWN else "")


class _Conflict(Exception):
    """The Node changed under us: re-read it and decide again."""


class Controller:
    """Remediation for one node. ``own(ctype)`` answers for our own condition types:
    ``None`` when not ours, else ``(status or None while unknown, since)``.
    ``repairs`` maps a condition type to a callable that runs the check's repair and returns
    the policy's one-line account; ``describe_repair`` maps it to what that would do."""

    def __init__(
        self,
        config,
        api,
        node: str,
        *,
        emit,
        clock,
        own=lambda ctype: None,
        repairs=None,
        describe_repair=None,
        dry_run: bool = False,
        metrics=None,
        log=None,
        active_tick: float = ACTIVE_TICK,
        drain_backoff: tuple[float, float] = (1.0, 30.0),
        rng=None,
    ) -> None:
        self.config = config
        self.api = api
        self.node = node
        self.emit_event = emit
        self.clock = clock
        self.own = own
        self.repairs = repairs or {}
        self.describe_repair = describe_repair or {}
        self.dry_run = dry_run or config.dry_run
        self.metrics = metrics
        self.log = log or (lambda message: None)
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
        self.drainers = {
            rule.name: Drainer(
                api,
                node,
                config.drain,
                dry_run=self._dry(rule),
                backoff_base=drain_backoff[0],
                backoff_cap=drain_backoff[1],
            )
            for rule in config.rules
            if "drain" in rule.actions
        }
        self.foreign = [rule for rule in config.rules if own(rule.condition) is None]
        self._lock = threading.Lock()
        self._not_before: dict[str, float | None] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.view: NodeView | None = None
        self._polled = 0.0
        self.dry_states: dict[str, r.RuleState] = {}
        self.waiting_since: float | None = None
        self.waiting_why = ""
        self.slot_retry = 0.0
        self.failures = 0
        self.last_error = ""
        self.phases: dict[str, dict] = {rule.name: {"phase": r.IDLE} for rule in config.rules}
        self._blocked_seen: dict[str, dict] = {}

    # ------------------------------------------------------------------ inputs (any thread)

    def observe(self, report) -> None:
        """A check's report: keep the not-before time it gave as data, and look again now."""
        spec = report.spec
        if not spec.permanent or not any(
            rule.condition == spec.condition for rule in self.config.rules
        ):
            return
        data = getattr(report.result, "data", None)
        value = data.get("not_before") if isinstance(data, dict) else None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        with self._lock:
            self._not_before[spec.condition] = float(value) if ok else None
        self._wake.set()

    def snapshot(self) -> dict:
        """The node's remediation state, for ``/conditions`` and ``healthcheck status``."""
        with self._lock:
            held = self.budget.held
            return {
                "dryRun": self.dry_run,
                "slot": (held.get("metadata") or {}).get("name") if held else None,
                "waiting": self.waiting_why if self.waiting_since is not None else None,
                "lastError": self.last_error or None,
                "rules": [{"name": name, **state} for name, state in self.phases.items()],
            }

    # ------------------------------------------------------------------------ observation

    def _dry(self, rule) -> bool:
        return self.dry_run or rule.dry_run

    def _read(self) -> NodeView:
        self.view = NodeView(self.api.get_node(self.node))
        self._polled = self.clock.monotonic()
        return self.view

    def _observe(self, rule, now: float) -> r.Observation:
        view = self.view
        node_age = now - view.created if view and view.created else None
        mine = self.own(rule.condition)
        if mine is not None:
            status, since = mine
        else:
            status, since = view.condition(rule.condition) if view else (None, 0.0)
        with self._lock:
            not_before = self._not_before.get(rule.condition)
        return r.Observation(status, since, not_before, node_age)

    def _state(self, rule) -> r.RuleState | None:
        if self._dry(rule):
            return self.dry_states.get(rule.name)
        return self.view.record.rules.get(rule.name) if self.view else None

    def _evaluate(self, now: float) -> list[tuple]:
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

    def _emit(self, kind: str, reason: str, message: str, rule=None) -> None:
        dry = rule is not None and self._dry(rule)
        text = one_line(f"{'dry run: would ' if dry else ''}{message}", EVENT_BYTES)
        prefix = f"rule {rule.name}: " if rule is not None else ""
        self.log(f"remediation: {prefix}{text}")
        self.emit_event(Event(kind, reason, text))

    def _outcome(self, rule, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.outcome(
                rule.name, "dry_run" if self._dry(rule) and outcome == "started" else outcome
            )

    def _phase(self, rule, phase: str, message: str = "") -> None:
        with self._lock:
            self.phases[rule.name] = {"phase": phase, "message": message}
        if self.metrics is not None:
            self.metrics.active.labels(rule.name).set(0 if phase in (r.IDLE, r.PENDING) else 1)

    # ------------------------------------------------------------------------ node writes

    def _patch(self, record: r.Record, **changes) -> None:
        body = patch_body(self.view, record, **changes)
        try:
            node = self.api.patch_node(self.node, body)
        except ApiError as exc:
            if exc.status == 409:
                raise _Conflict() from None
            raise
        self.view = NodeView(node) if node else self._read()

    def _save(self, rule, state: r.RuleState | None, **changes) -> None:
        """Write ``state`` for ``rule`` (with node ``changes``), or keep it in memory when dry."""
        if self._dry(rule):
            if state is None:
                self.dry_states.pop(rule.name, None)
            else:
                self.dry_states[rule.name] = state
            return
        record = self.view.record.copy()
        if state is None:
            record.rules.pop(rule.name, None)
        else:
            record.rules[rule.name] = state
        if changes.get("unschedulable") is True:
            record.cordoned = True
        elif changes.get("unschedulable") is False:
            record.cordoned = False
        self._patch(record, **changes)

    # ---------------------------------------------------------------------------- actions

    def _start(self, rule, now: float) -> r.RuleState:
        state = r.RuleState(now)
        self._emit(
            "Warning",
            "RemediationStarted",
            f"start remediation {rule.name} for {rule.condition}={rule.status}: "
            f"{', '.join(rule.actions)}",
            rule,
        )
        self._outcome(rule, "started")
        return state

    def _act(self, rule, state: r.RuleState, action: str, now: float) -> bool:
        """Carry out ``action``; ``True`` when it is complete (the next may follow at once)."""
        done = r.RuleState(
            state.started,
            [*state.done, action],
            state.repaired_at,
            state.hold_until,
            state.drain_started,
        )
        view = self.view
        if action == "taint":
            if view.has_taint(rule.taint_key):
                self._save(rule, done)
            else:
                self._save(rule, done, add_taints=[rule.taint_key])
                self._emit(
                    "Normal", "NodeTainted", f"taint the node {rule.taint_key}:NoSchedule", rule
                )
        elif action == "cordon":
            if not view.unschedulable:
                self._save(rule, done, unschedulable=True)
                self._emit("Normal", "NodeCordoned", "cordon the node", rule)
            else:
                self._save(rule, done)
                if not view.record.cordoned:  # an operator's cordon: theirs, never undone by us
                    self._emit(
                        "Normal",
                        "AlreadyCordoned",
                        "leave the node cordoned as someone else did (it will not be uncordoned)",
                        rule,
                    )
        elif action == "drain":
            if not self._drain(rule, state, now):
                return False
        elif action == "repair":
            self._repair(rule, done, now)
        state = self._state(rule)
        if state is not None and all(a in state.done for a in rule.actions):
            self._outcome(rule, "done")
        return True

    def _drain(self, rule, state: r.RuleState, now: float) -> bool:
        """One drain pass; ``True`` once the drain is over (done, incomplete or timed out)."""
        if state.drain_started is None:
            state = r.RuleState(state.started, state.done, state.repaired_at, state.hold_until, now)
            self._save(rule, state)
            self._emit("Normal", "DrainStarted", "drain the node (evict its pods)", rule)
        result = self.drainers[rule.name].step(self.clock.monotonic())
        if self.metrics is not None:
            if result.evicted and not self._dry(rule):
                self.metrics.evictions.labels("evicted").inc(len(result.evicted))
            if result.blocked:
                self.metrics.evictions.labels("blocked").inc(len(result.blocked))
        if result.evicted:
            self._emit(
                "Normal",
                "PodsEvicted",
                f"evict {len(result.evicted)} pod(s): {_names(result.evicted)}",
                rule,
            )
        if result.blocked and result.blocked != self._blocked_seen.get(rule.name):
            self._blocked_seen[rule.name] = dict(result.blocked)
            by = ", ".join(
                f"{pod} by PDB {pdb}" for pod, pdb in list(result.blocked.items())[:LIST_SHOWN]
            )
            self._emit("Warning", "DrainBlocked", f"eviction refused: {by}; retrying", rule)
        for pod, error in list(result.errors.items())[:LIST_SHOWN]:
            self.log(f"remediation: rule {rule.name}: evict {pod}: {error}")
        timed_out = now - state.drain_started > self.config.drain.timeout
        if not result.finished and not timed_out and not self._dry(rule):
            self._phase(rule, "draining", f"{len(result.pending)} pod(s) left")
            return False
        self._blocked_seen.pop(rule.name, None)
        done = r.RuleState(
            state.started,
            [*state.done, "drain"],
            state.repaired_at,
            state.hold_until,
            state.drain_started,
        )
        self._save(rule, done)
        left = {**dict.fromkeys(result.pending, "not evicted in time"), **result.refused}
        if left:
            what = "drain timed out" if result.pending else "drain incomplete"
            shown = ", ".join(f"{pod} ({why})" for pod, why in list(left.items())[:LIST_SHOWN])
            self._emit(
                "Warning",
                "DrainTimedOut" if result.pending else "DrainIncomplete",
                f"{what}; the node stays cordoned; pods left: {shown}",
                rule,
            )
            self._outcome(rule, "drain_timeout" if result.pending else "drain_incomplete")
        else:
            self._emit("Normal", "DrainDone", "drain done: no evictable pod left", rule)
        return True

    def _repair(self, rule, done: r.RuleState, now: float) -> None:
        done.repaired_at = now
        if self._dry(rule):
            what = self.describe_repair.get(rule.condition, lambda: "repair")()
            self._save(rule, done)
            self._emit("Warning", "RepairRun", f"run the repair: {what}", rule)
            return
        self._save(rule, done)  # recorded first: a crash mid-repair must not repeat it at once
        account = self.repairs[rule.condition]()
        self._emit(
            "Warning", "RepairRun", f"repair: {account or 'nothing done (repair disabled)'}", rule
        )

    def _repair_failed(self, rule, state: r.RuleState, now: float) -> None:
        held = r.after_repair_failed(rule, state, now)
        self._save(rule, held)
        self._emit(
            "Warning",
            "RepairDidNotHelp",
            f"{rule.condition} still {rule.status} after the repair; next try not before "
            f"{int(rule.repair_hold)}s from now",
            rule,
        )
        self._outcome(rule, "repair_failed")

    def _undo(self, rule, state: r.RuleState) -> None:
        record = self.view.record if not self._dry(rule) else r.Record()
        others_cordon = any(
            name != rule.name and "cordon" in other.done for name, other in record.rules.items()
        )
        changes: dict = {}
        undone = []
        if "taint" in state.done:
            changes["remove_taints"] = [rule.taint_key]
            undone.append(f"remove taint {rule.taint_key}")
        if "cordon" in state.done and not others_cordon and (record.cordoned or self._dry(rule)):
            changes["unschedulable"] = False
            undone.append("uncordon")
        self._save(rule, None, **changes)
        what = ", ".join(undone) or "nothing left to undo"
        self._emit("Normal", "RemediationUndone", f"{rule.condition} cleared: {what}", rule)
        self._outcome(rule, "undone")

    # ------------------------------------------------------------------------- the budget

    def _needs_slot(self, rule, step, state) -> bool:
        if self._dry(rule):
            return False
        if step.kind in (r.START, r.ACT):
            return True
        return r.holds_marks(state) or (
            state is not None and state.repaired_at is not None and "repair" in state.done
        )

    def _slot(self, now: float) -> bool:
        budget = self.budget
        if budget.held is not None:
            if budget.renew():
                return True
            self._emit(
                "Warning", "RemediationSlotLost", "lost the remediation slot (not renewed in time)"
            )
        if now < self.slot_retry:
            return False
        ok, why = budget.acquire()
        if ok:
            if self.waiting_since is not None:
                waited = now - self.waiting_since
                if self.metrics is not None:
                    self.metrics.wait_seconds.inc(waited)
                self._emit(
                    "Normal",
                    "RemediationSlotAcquired",
                    f"got a remediation slot after waiting {waited:.0f}s",
                )
            self.waiting_since = None
            return True
        if self.waiting_since is None:
            self.waiting_since = now
            self._emit("Normal", "RemediationWaiting", f"waiting for a remediation slot: {why}")
        self.waiting_why = why
        pause = min(15.0, max(self.active_tick, self.config.lease_duration / 3))
        self.slot_retry = now + pause * self._rng.uniform(0.8, 1.2)
        return False

    # ------------------------------------------------------------------------------- step

    def step(self) -> float:
        """Do what is due; return seconds until the next look."""
        try:
            wait = self._step()
        except _Conflict:
            # The Node changed between our read and our write (our own status PATCH, the
            # kubelet, an operator): read it again and decide afresh, after a short pause.
            self.view = None
            return self._rng.uniform(0.05, 0.2)
        except ApiError as exc:
            self.failures += 1
            self.last_error = str(exc)
            self.log(f"remediation: {exc}")
            self.view = None
            return min(30.0, 0.5 * 2 ** min(self.failures, 6)) * self._rng.uniform(0.5, 1.0)
        self.failures = 0
        self.last_error = ""
        if self.metrics is not None:
            self.metrics.slot_held.set(1 if self.budget.held is not None else 0)
            self.metrics.waiting.set(1 if self.waiting_since is not None else 0)
        return wait

    def _do(self, rule, step, now: float) -> bool:
        """Carry out one step; ``True`` when the rule should be looked at again at once."""
        kind = step.kind
        if kind == r.START:
            return self._act(rule, self._start(rule, now), rule.actions[0], now)
        if kind == r.ACT:
            return self._act(rule, self._state(rule), step.action, now)
        if kind == r.REPAIR_FAILED:
            self._repair_failed(rule, self._state(rule), now)
        elif kind == r.UNDO:
            self._undo(rule, self._state(rule))
        return False

    def _step(self) -> float:
        now = self.clock.time()
        mono = self.clock.monotonic()
        read = False
        if self.view is None or (self.foreign and mono - self._polled >= self.config.poll_interval):
            self._read()
            read = True
        steps = self._evaluate(now)
        wanted = any(self._needs_slot(rule, s, self._state(rule)) for rule, s in steps)
        have_slot = self._slot(mono) if wanted else False

        def writes(step, rule) -> bool:
            if step.kind in (r.UNDO, r.REPAIR_FAILED):
                return True
            return step.kind in (r.START, r.ACT) and (have_slot or self._dry(rule))

        if not read and any(writes(s, rule) for rule, s in steps):
            self._read()  # act on the node as it is now, not as it was; not while waiting
        wakes = []
        for rule in self.config.rules:
            step = None
            for _ in range(len(rule.actions) + 2):
                step = r.evaluate(
                    rule, self._observe(rule, now), self._state(rule), now, self.config.node_grace
                )
                if step.kind in (r.START, r.ACT) and not have_slot and not self._dry(rule):
                    break
                if not self._do(rule, step, now):
                    break
            state = self._state(rule)
            if step.kind in (r.START, r.ACT) and not have_slot and not self._dry(rule):
                self._phase(rule, "waiting", self.waiting_why)
                wakes.append(self.slot_retry - mono)
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
            self.log("remediation: slot released")
        if self.budget.held is not None:
            wakes.append(self.budget.renew_due - mono)
        if self.foreign:
            wakes.append(self.config.poll_interval - (mono - self._polled))
        return max(0.0, min([IDLE_TICK, *wakes]))

    def _phase_name(self, rule, kind: str, state) -> str:
        if state is None:
            return kind if kind == r.PENDING else r.IDLE
        if state.hold_until is not None and "repair" not in state.done:
            return "hold"
        if all(a in state.done for a in rule.actions):
            return "done"
        return "acting"

    def _phase_message(self, rule, step, state) -> str:
        if state is None:
            if step.kind == r.PENDING and step.wake is not None:
                from healthcheck.agent.clock import rfc3339

                return f"acting at {rfc3339(step.wake)}"
            return ""
        done = ", ".join(state.done) or "nothing yet"
        return f"{'dry run, ' if self._dry(rule) else ''}done: {done}"

    # ------------------------------------------------------------------------- the thread

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.step()
            self._wake.wait(max(0.0, wait))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="remediation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loop. The slot is *kept* (it expires by itself): a restarted agent carries on
        with it, and a node going down mid-drain still frees it after one lease duration."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
