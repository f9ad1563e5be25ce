"""Remediation against the real kube-apiserver, as the agent's ServiceAccount with the shipped
rbac.yaml plus packaging/kubernetes/remediation/rbac.yaml (so these tests also prove those
rights suffice). Pods, PDB status and condition changes are set by the tests (no kubelet or
controllers run here: shared/envtest/README.md)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from remediation_cluster import (
    LEASE_NAMESPACE,
    REMEDIATION_RBAC,
    Conditions,
    Events,
    Kubelet,
    clear_leases,
    controller,
    evicted,
    leases,
    make_namespace,
    make_pdb,
    make_pod,
    node,
    our_taints,
    pod,
    record,
    set_pdb_allowed,
    wait_for,
)

MAINT = "MaintenanceScheduled"
TAINT = "remediation.node-healthcheck.io/MaintenanceScheduled"
_ids = itertools.count()


@pytest.fixture(scope="module")
def cluster(shipped_rbac):
    """The session's server with remediation/rbac.yaml applied for this module only: other
    modules check that the default install grants exactly NPD's rights."""
    shipped_rbac.kubectl("apply", "-f", str(REMEDIATION_RBAC))
    yield shipped_rbac
    for kind, namespace in (("clusterrolebinding", None), ("rolebinding", LEASE_NAMESPACE)):
        scope = ["-n", namespace] if namespace else []
        shipped_rbac.kubectl("delete", kind, "node-healthcheck-remediation", *scope)


@pytest.fixture
def names(cluster):
    """A fresh node and namespace per test; no slot Lease left from another test."""
    clear_leases(cluster)
    n = next(_ids)
    node_name, ns = f"rem-node-{n}", f"rem-ns-{n}"
    cluster.create_node(node_name)
    make_namespace(cluster, ns)
    return node_name, ns


def rules(**rule):
    base = {
        "name": "maintenance",
        "when": {"condition": MAINT},
        "actions": ["taint", "cordon", "drain"],
        "minHold": "0s",
    }
    base.update(rule)
    return [base]


def settings(**extra):
    base = {
        "maxConcurrent": 1,
        "minInterval": "0s",
        "nodeGrace": "0s",
        "leaseDuration": "2s",
        "pollInterval": "1s",
        "rules": rules(),
    }
    base.update(extra)
    return base


def run_until(ctl, predicate, timeout=20.0, what="condition"):
    """Step the controller in this thread until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; events: {ctl.emit_event.items}")
        time.sleep(min(0.05, ctl.step()))


def test_taint_cordon_drain_then_undo(cluster, names):
    node_name, ns = names
    make_pod(cluster, ns, "web", node_name)
    make_pod(cluster, ns, "agent", node_name, owner="DaemonSet")
    make_pod(
        cluster,
        ns,
        "static",
        node_name,
        owner=None,
        annotations={"kubernetes.io/config.mirror": "x"},
    )
    make_pod(
        cluster,
        ns,
        "keep",
        node_name,
        annotations={"remediation.node-healthcheck.io/skip-drain": "true"},
    )
    make_pod(cluster, ns, "loner", node_name, owner=None)
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, node_name, settings(), conditions, events)
    conditions.set(MAINT, "False")
    ctl.step()
    assert not node(cluster, node_name)["spec"].get("unschedulable")
    conditions.set(MAINT, "True")
    with Kubelet(cluster, ns):
        run_until(
            ctl,
            lambda: (
                "drain"
                in record(node(cluster, node_name))
                .get("rules", {})
                .get("maintenance", {})
                .get("done", [])
            ),
            what="drain done",
        )
    got = node(cluster, node_name)
    assert got["spec"]["unschedulable"] is True
    assert our_taints(got) == [TAINT]
    assert record(got)["cordoned"] is True
    assert evicted(cluster, ns, "web")
    for kept in ("agent", "static", "keep", "loner"):
        assert not pod(cluster, ns, kept)["metadata"].get("deletionTimestamp"), kept
    assert events.reasons()[:6] == [
        "RemediationStarted",
        "NodeTainted",
        "NodeCordoned",
        "DrainStarted",
        "PodsEvicted",
        "DrainIncomplete",
    ]
    (left,) = events.messages("DrainIncomplete")
    assert f"{ns}/loner (has no controller (drain.force))" in left
    assert [lease["spec"].get("holderIdentity") for lease in leases(cluster)] == [node_name]
    # the event is gone: undo, and the slot is given back
    conditions.set(MAINT, "False")
    run_until(ctl, lambda: "RemediationUndone" in events.reasons(), what="undo")
    got = node(cluster, node_name)
    assert not got["spec"].get("unschedulable")
    assert our_taints(got) == []
    assert record(got) == {}
    assert [lease["spec"].get("holderIdentity") for lease in leases(cluster)] == [None]


def test_pods_are_listed_in_pages(cluster, names, monkeypatch):
    from healthcheck._agent.remediation import api

    node_name, ns = names
    for i in range(5):
        make_pod(cluster, ns, f"p{i}", node_name)
    make_pod(cluster, ns, "elsewhere", f"{node_name}-other")
    monkeypatch.setattr(api, "POD_PAGE", 2)
    ctl = controller(cluster, node_name, settings(), Conditions(), Events())
    before = ctl.api.requests
    pods, complete = ctl.api.list_pods(node_name)
    assert sorted(p["metadata"]["name"] for p in pods) == [f"p{i}" for i in range(5)]
    assert complete
    assert ctl.api.requests - before == 3


def test_a_drain_pass_stops_evicting_at_its_time_budget(cluster, names):
    """A pass evicts for at most a third of the lease (here: no time at all, so one eviction
    per pass), leaving the rest to the next pass: a node with many pods or a slow server never
    keeps the loop from renewing its slot."""
    node_name, ns = names
    for i in range(3):
        make_pod(cluster, ns, f"web-{i}", node_name)
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, node_name, settings(), conditions, events)
    assert ctl.actions.drainers["maintenance"].pass_budget == 2 / 3  # leaseDuration 2s
    ctl.actions.drainers["maintenance"].pass_budget = 0.0
    conditions.set(MAINT, "True")
    with Kubelet(cluster, ns):
        run_until(ctl, lambda: "DrainDone" in events.reasons(), what="drain done")
    evicted_events = events.messages("PodsEvicted")
    assert len(evicted_events) == 3
    assert all(message.startswith("evict 1 pod(s): ") for message in evicted_events)


def test_a_node_with_more_pods_than_listed_is_never_drained_done(cluster, names, monkeypatch):
    """Past MAX_POD_PAGES the pods not listed are not taken for gone: the drain times out
    and says so, instead of "drain done" with a pod still on the node."""
    from healthcheck._agent.remediation import api

    node_name, ns = names
    skip = {"remediation.node-healthcheck.io/skip-drain": "true"}
    for i in range(4):
        make_pod(cluster, ns, f"a{i}", node_name, annotations=skip)
    make_pod(cluster, ns, "z-web", node_name)  # listed last: beyond the first two pages
    monkeypatch.setattr(api, "POD_PAGE", 2)
    monkeypatch.setattr(api, "MAX_POD_PAGES", 2)
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, node_name, settings(drain={"timeout": "1s"}), conditions, events)
    conditions.set(MAINT, "True")
    run_until(
        ctl,
        lambda: {"DrainDone", "DrainTimedOut"} & set(events.reasons()),
        what="the drain's end",
    )
    assert "DrainDone" not in events.reasons()
    (message,) = events.messages("DrainTimedOut")
    assert "pods beyond the first listed" in message


def test_pdb_blocks_then_allows(cluster, names):
    node_name, ns = names
    make_pod(cluster, ns, "db", node_name, labels={"app": "db"}, running=True)
    make_pdb(cluster, ns, "db-pdb", {"app": "db"}, allowed=0)
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, node_name, settings(), conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: events.messages("DrainBlocked"), what="PDB refusal")
    assert f"{ns}/db by PDB db-pdb" in events.messages("DrainBlocked")[0]
    for _ in range(5):
        ctl.step()
        time.sleep(0.1)
    assert not pod(cluster, ns, "db")["metadata"].get("deletionTimestamp")
    set_pdb_allowed(cluster, ns, "db-pdb", 1)
    with Kubelet(cluster, ns):
        run_until(ctl, lambda: "DrainDone" in events.reasons(), what="drain done")
    assert evicted(cluster, ns, "db")
    assert events.reasons().count("DrainBlocked") == 1  # one Event per blocked set, not per try


def test_drain_waits_until_evicted_pods_are_gone(cluster, names):
    """As ``kubectl drain``: an accepted eviction is not the end; the drain is done when the
    pod is gone (a kubelet finishing its graceful deletion), and a pod that stays terminating
    is named when the drain times out."""
    node_name, ns = names
    make_pod(cluster, ns, "web", node_name)
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, node_name, settings(drain={"timeout": "3s"}), conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "PodsEvicted" in events.reasons(), what="eviction")
    for _ in range(5):
        ctl.step()
        time.sleep(0.1)
    assert "DrainDone" not in events.reasons()
    assert ctl.snapshot()["rules"][0] == {
        "name": "maintenance",
        "phase": "draining",
        "message": "1 pod(s) left",
    }
    Kubelet(cluster, ns).finish()
    run_until(ctl, lambda: "DrainDone" in events.reasons(), what="drain done")
    # a second node whose evicted pod never goes: named when the drain times out
    other = f"{node_name}-stuck"
    cluster.create_node(other)
    make_pod(cluster, ns, "stuck", other)
    events2 = Events()
    stuck = settings(maxConcurrent=2, drain={"timeout": "1s"})  # the first node keeps its slot
    ctl2 = controller(cluster, other, stuck, conditions, events2)
    run_until(ctl2, lambda: events2.messages("DrainTimedOut"), what="drain timeout")
    assert f"{ns}/stuck (still terminating)" in events2.messages("DrainTimedOut")[0]


def test_a_restarted_agent_carries_on_with_its_slot_and_record(cluster, names):
    """Restart mid-drain: the new loop finds its own Lease and the record on the Node, keeps
    the slot (no second start, no wait) and finishes the drain."""
    node_name, ns = names
    make_pod(cluster, ns, "db", node_name, labels={"app": "db"}, running=True)
    make_pdb(cluster, ns, "db-pdb", {"app": "db"}, allowed=0)
    conditions, events = Conditions(), Events()
    first = controller(cluster, node_name, settings(leaseDuration="30s"), conditions, events)
    conditions.set(MAINT, "True")
    run_until(first, lambda: events.messages("DrainBlocked"), what="blocked drain")
    slot = first.budget.held["metadata"]["name"]
    del first  # the process is gone; its Lease is still fresh (30 s)
    events2 = Events()
    second = controller(cluster, node_name, settings(leaseDuration="30s"), conditions, events2)
    run_until(second, lambda: second.budget.held is not None, what="slot adopted")
    assert second.budget.held["metadata"]["name"] == slot
    set_pdb_allowed(cluster, ns, "db-pdb", 1)
    with Kubelet(cluster, ns):
        run_until(second, lambda: "DrainDone" in events2.reasons(), what="drain finished")
    assert "RemediationStarted" not in events2.reasons()
    assert "RemediationWaiting" not in events2.reasons()
    assert "DrainStarted" not in events2.reasons()  # the start time came from the record


def test_drain_timeout_leaves_the_node_cordoned_and_names_the_pods(cluster, names):
    node_name, ns = names
    make_pod(cluster, ns, "db", node_name, labels={"app": "db"}, running=True)
    make_pdb(cluster, ns, "db-pdb", {"app": "db"}, allowed=0)
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, node_name, settings(drain={"timeout": "1s"}), conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: events.messages("DrainTimedOut"), what="drain timeout")
    (message,) = events.messages("DrainTimedOut")
    assert f"{ns}/db (not evicted in time)" in message
    assert node(cluster, node_name)["spec"]["unschedulable"] is True


def test_operator_cordon_is_left_untouched(cluster, names):
    node_name, _ = names
    patch = {"spec": {"unschedulable": True}}
    cluster.request(
        "PATCH",
        f"/api/v1/nodes/{node_name}",
        body=patch,
        content_type="application/merge-patch+json",
    )
    conditions, events = Conditions(), Events()
    remediation = settings(rules=rules(actions=["taint", "cordon"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "AlreadyCordoned" in events.reasons(), what="cordon step")
    assert "NodeCordoned" not in events.reasons()
    assert "cordoned" not in record(node(cluster, node_name))
    conditions.set(MAINT, "False")
    run_until(ctl, lambda: "RemediationUndone" in events.reasons(), what="undo")
    got = node(cluster, node_name)
    assert got["spec"]["unschedulable"] is True  # the operator's, so still there
    assert our_taints(got) == []
    assert "uncordon" not in events.messages("RemediationUndone")[0]


def test_dry_run_changes_nothing(cluster, names):
    node_name, ns = names
    make_pod(cluster, ns, "web", node_name)
    before = node(cluster, node_name)
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, node_name, settings(), conditions, events, dry_run=True)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "DrainDone" in events.reasons(), what="dry drain")
    assert events.messages("PodsEvicted") == [f"dry run: would evict 1 pod(s): {ns}/web"]
    assert events.messages("NodeCordoned") == ["dry run: would cordon the node"]
    conditions.set(MAINT, "False")
    run_until(ctl, lambda: "RemediationUndone" in events.reasons(), what="dry undo")
    after = node(cluster, node_name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert not pod(cluster, ns, "web")["metadata"].get("deletionTimestamp")
    assert leases(cluster) == []
    # a per-rule dryRun does the same inside a live configuration
    conditions2, events2 = Conditions(), Events()
    live = settings(rules=rules(dryRun=True))
    ctl2 = controller(cluster, node_name, live, conditions2, events2)
    conditions2.set(MAINT, "True")
    run_until(ctl2, lambda: "DrainDone" in events2.reasons(), what="per-rule dry drain")
    assert (
        node(cluster, node_name)["metadata"]["resourceVersion"]
        == before["metadata"]["resourceVersion"]
    )
    assert leases(cluster) == []


def flaky_checker(repairs: list):
    """A checker with a repair, as the kubelet's is; its repair is recorded, not a restart."""
    from healthcheck import Checker, Condition, Result
    from healthcheck.sdk.repair import REPAIR_OPTIONS, Repair

    return Checker(
        "flaky",
        description="test checker with a repair",
        check=lambda ctx: Result.problem("broken"),
        condition=Condition("FlakyProblem", "FlakyBad", "FlakyOK", "ok"),
        options=REPAIR_OPTIONS,
        repair=Repair(
            lambda ctx: repairs.append(time.monotonic()),
            uptime=lambda ctx: 1e6,
            target=lambda ctx: "flaky",
            describe=lambda ctx: "restart flaky",
        ),
    )


def flaky_controller(env, node_name, state_dir, checker, remediation, metrics=None):
    """A controller whose agent runs ``checker`` as "flaky" (repair state in ``state_dir``, no
    cooldown), FlakyProblem being our own condition; ``(controller, conditions, events)``."""
    checks = [{"checker": "flaky", "options": {"state_dir": str(state_dir), "cooldown_time": "0s"}}]
    conditions, events = Conditions(owned=("FlakyProblem",)), Events()
    ctl = controller(
        env,
        node_name,
        remediation,
        conditions,
        events,
        checks=checks,
        catalog={"flaky": checker},
        metrics=metrics,
    )
    return ctl, conditions, events


def flaky_settings(**rule) -> dict:
    """Remediation with one ``repair`` rule on FlakyProblem, verdict after 1 s."""
    base = {
        "name": "flaky",
        "when": {"condition": "FlakyProblem"},
        "actions": ["repair"],
        "repairVerify": "1s",
        "minHold": "0s",
    }
    base.update(rule)
    return settings(rules=[base])


def test_repair_behind_the_budget_then_hold_then_retry(cluster, names, tmp_path):
    from prometheus_client import CollectorRegistry

    from healthcheck._agent.remediation.metrics import RemediationMetrics

    node_name, _ = names
    repairs: list = []
    registry = CollectorRegistry()
    ctl, conditions, events = flaky_controller(
        cluster,
        node_name,
        tmp_path,
        flaky_checker(repairs),
        flaky_settings(repairHold="2s"),
        metrics=RemediationMetrics(registry, []),
    )
    conditions.set("FlakyProblem", "True")
    run_until(ctl, lambda: repairs, what="first repair")
    assert [lease["spec"].get("holderIdentity") for lease in leases(cluster)] == [node_name]
    assert events.messages("RepairRun") == ["repair: repaired: restart flaky (up 277h46m40s)"]
    run_until(ctl, lambda: "RepairDidNotHelp" in events.reasons(), what="verdict")
    assert ctl.budget.held is None  # no slot while on hold
    first_verdict = time.monotonic()
    run_until(ctl, lambda: len(repairs) == 2, what="second repair after the hold")
    assert repairs[1] - first_verdict >= 1.5
    conditions.set("FlakyProblem", "False")  # this time it helped
    run_until(ctl, lambda: "RemediationUndone" in events.reasons(), what="done")
    assert ctl.budget.held is None
    sample = registry.get_sample_value
    assert (
        sample("healthcheck_remediation_total", {"rule": "flaky", "outcome": "repair_failed"}) >= 1
    )
    assert sample("healthcheck_remediation_total", {"rule": "flaky", "outcome": "undone"}) == 1
    assert sample("healthcheck_remediation_slot_held") == 0


def test_min_interval_spaces_starts_across_the_fleet(cluster, names):
    node_a, _ = names
    node_b = f"{node_a}-b"
    cluster.create_node(node_b)
    remediation = settings(maxConcurrent=2, minInterval="2s", rules=rules(actions=["taint"]))
    fleet = []
    for name in (node_a, node_b):
        conditions, events = Conditions(), Events()
        fleet.append(
            (controller(cluster, name, remediation, conditions, events), conditions, events)
        )
    for _, conditions, _ in fleet:
        conditions.set(MAINT, "True")
    started = {}
    deadline = time.monotonic() + 20
    while len(started) < 2 and time.monotonic() < deadline:
        for ctl, _, events in fleet:
            if ctl.node not in started and "RemediationStarted" in events.reasons():
                started[ctl.node] = time.monotonic()
            ctl.step()
        time.sleep(0.05)
    first, second = sorted(started.values())
    assert second - first >= 1.8  # 2s, less this loop's 50 ms sampling
    waiting = [events.messages("RemediationWaiting") for _, _, events in fleet]
    assert any("(minInterval)" in m for ms in waiting for m in ms)


def test_percentage_budget_counts_nodes(cluster, names):
    conditions, events = Conditions(), Events()
    ctl = controller(cluster, names[0], settings(maxConcurrent="50%"), conditions, events)
    _, body = cluster.request("GET", "/api/v1/nodes")
    assert ctl.budget.limit() == max(1, len(body["items"]) // 2)


def test_twenty_nodes_two_slots(cluster):
    """20 nodes see the event at once with maxConcurrent 2: never more than 2 cordoned by us,
    all 20 done in the end. Each node's "maintenance" happens when its drain is done (the
    test clears the condition), which undoes the cordon and frees the slot."""
    clear_leases(cluster)
    count = 20
    base = f"fleet-{next(_ids)}"
    ns = f"{base}-ns"
    make_namespace(cluster, ns)
    fleet = []
    for i in range(count):
        name = f"{base}-{i}"
        cluster.create_node(name)
        make_pod(cluster, ns, f"web-{i}", name)
        conditions, events = Conditions(), Events()
        ctl = controller(
            cluster, name, settings(maxConcurrent=2, leaseDuration="3s"), conditions, events
        )
        fleet.append((name, conditions, events, ctl))
    peak, samples, stop = [0], [0], threading.Event()

    def watch():
        while not stop.is_set():
            _, body = cluster.request("GET", "/api/v1/nodes")
            ours = [
                n
                for n in body["items"]
                if n["metadata"]["name"].startswith(base)
                and n["spec"].get("unschedulable")
                and record(n).get("cordoned")
            ]
            peak[0] = max(peak[0], len(ours))
            samples[0] += 1
            for n in ours:
                done = record(n).get("rules", {}).get("maintenance", {}).get("done", [])
                if "drain" in done:  # the maintenance happens: the event disappears
                    for name, conditions, _, _ in fleet:
                        if name == n["metadata"]["name"]:
                            conditions.set(MAINT, "False")
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    for _, conditions, _, _ in fleet:
        conditions.set(MAINT, "True")
    for *_, ctl in fleet:
        ctl.start()
    try:
        with Kubelet(cluster, ns, poll=0.1):
            wait_for(
                lambda: all("RemediationUndone" in e.reasons() for _, _, e, _ in fleet),
                timeout=120,
                what="all 20 undone",
            )
    finally:
        stop.set()
        watcher.join(2)
        for *_, ctl in fleet:
            ctl.stop()
    total = time.monotonic() - started
    requests = sum(ctl.api.requests for *_, ctl in fleet)
    print(
        f"\n20 nodes / 2 slots: peak {peak[0]} cordoned by us, {total:.1f}s, "
        f"{requests / count:.1f} API requests per remediation, {samples[0]} samples"
    )
    assert peak[0] <= 2
    assert peak[0] == 2  # the budget was used, not serialised to one
    for name, _, events, _ in fleet:
        assert events.reasons().count("RemediationStarted") == 1, name
        assert not node(cluster, name)["spec"].get("unschedulable")
    assert all(not lease["spec"].get("holderIdentity") for lease in leases(cluster))


def test_agent_rights_are_exactly_npd_plus_remediation(cluster):
    """SelfSubjectRulesReview: what the agent may do beyond what every authenticated user may."""

    def rules(identity, namespace):
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
        status, review = cluster.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            identity=identity,
            body=body,
        )
        assert status == 201
        found = set()
        for rule in review["status"]["resourceRules"]:
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule["verbs"]:
                        found.add((group, resource, verb))
        return found

    npd = {("", "nodes", "get"), ("", "nodes/status", "patch")} | {
        (g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch", "update")
    }
    remediation = {
        ("", "nodes", "patch"),
        ("", "nodes", "list"),
        ("", "pods", "list"),
        ("", "pods/eviction", "create"),
    }
    leases_ = {("coordination.k8s.io", "leases", v) for v in ("list", "create", "update")}
    for namespace, extra in (
        ("default", set()),
        ("kube-system", set()),
        (LEASE_NAMESPACE, leases_),
    ):
        granted = rules("agent", namespace) - rules("nobody", namespace)
        assert granted == npd | remediation | extra, namespace


def test_agent_cannot_do_more(cluster):
    """Spot checks with the agent's own token: what remediation never needs is refused."""
    forbidden = [
        ("DELETE", "/api/v1/namespaces/default/pods/x"),
        ("POST", "/api/v1/namespaces/default/pods"),
        ("GET", "/api/v1/namespaces/kube-system/secrets"),
        ("DELETE", "/api/v1/nodes/x"),
        ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"),
        ("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/x"),
    ]
    for method, path in forbidden:
        body = {} if method == "POST" else None
        status, _ = cluster.request(method, path, identity="agent", body=body)
        assert status == 403, (method, path, status)


# ------------------------------------------------------------------ the agent, as a process


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_agent(bin_path, cluster, tmp_path, node_name: str, config: str):
    import subprocess

    path = tmp_path / f"agent-{node_name}.yaml"
    path.write_text(config)
    log = (tmp_path / f"agent-{node_name}.log").open("w")
    return subprocess.Popen(
        [
            bin_path("healthcheck"),
            "agent",
            "--config",
            str(path),
            "--kubeconfig",
            str(cluster.kubeconfig("agent")),
            "--node-name",
            node_name,
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )


def stop_agent(proc) -> int:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(10)


def node_events(cluster, node_name: str) -> list[str]:
    from urllib.parse import quote

    selector = quote(f"involvedObject.name={node_name}")
    _, body = cluster.request("GET", f"/api/v1/namespaces/default/events?fieldSelector={selector}")
    return [
        e["reason"] for e in sorted(body["items"], key=lambda e: e["metadata"]["creationTimestamp"])
    ]


def conditions_entry(port: int) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/conditions", timeout=5) as reply:
        entries = json.loads(reply.read())
    return {e["type"]: e for e in entries}["NodeHealthcheckRemediation"]


AGENT_CONFIG = """\
heartbeatPeriod: 5m
metrics: ""
server: 127.0.0.1:{port}
checks:
  - checker: maintenance-events
    interval: 1s
    options: {{provider: alibaba, endpoint: "{url}", state_dir: "{state}"}}
remediation:
  maxConcurrent: 1
  minInterval: 0s
  nodeGrace: 0s
  leaseDuration: 3s
  rules:
    - name: maintenance
      when: {{condition: MaintenanceScheduled}}
      actions: [taint, cordon, drain]
      leadTime: 30m
      minHold: 0s
"""


def alibaba_event(not_before: float) -> dict:
    return {
        "event-id": "e-1",
        "event-type": "SystemMaintenance.Reboot",
        "event-status": "Scheduled",
        "not-before": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(not_before)),
    }


def test_agent_maintenance_event_to_drain_and_back(cluster, names, bin_path, run_cli, tmp_path):
    """The whole chain in a real agent process: the metadata emulator publishes a maintenance
    event; the agent acts at not-before minus leadTime (the time passed as data), taints,
    cordons, drains; when the event is gone it undoes all of it. Events land on the server."""
    from metadata_emulator import MetadataEmulator

    node_name, ns = names
    make_pod(cluster, ns, "web", node_name)
    port = free_port()
    with MetadataEmulator("alibaba") as emu:
        config = AGENT_CONFIG.format(port=port, url=emu.url, state=tmp_path)
        agent = start_agent(bin_path, cluster, tmp_path, node_name, config)
        try:
            wait_for(lambda: cluster.node_conditions(node_name).get(MAINT), what="first report")
            # far ahead: the condition is True at once, remediation waits for its lead time
            emu.events = [alibaba_event(time.time() + 7200)]
            wait_for(
                lambda: conditions_entry(port)["remediation"]["rules"][0]["phase"] == "pending",
                what="pending",
            )
            entry = conditions_entry(port)
            assert entry["status"] == "False"
            assert entry["remediation"]["rules"][0]["message"].startswith("acting at ")
            assert not node(cluster, node_name)["spec"].get("unschedulable")
            # rescheduled to within the lead time: act now
            emu.events = [alibaba_event(time.time() + 600)]
            wait_for(lambda: node(cluster, node_name)["spec"].get("unschedulable"), what="cordon")
            wait_for(lambda: evicted(cluster, ns, "web"), what="eviction")
            with Kubelet(cluster, ns):
                wait_for(
                    lambda: conditions_entry(port)["remediation"]["rules"][0]["phase"] == "done",
                    what="done",
                )
            entry = conditions_entry(port)
            assert (entry["status"], entry["reason"]) == ("True", "Remediating")
            assert entry["remediation"]["slot"].startswith("node-healthcheck-slot-")
            assert our_taints(node(cluster, node_name)) == [TAINT]
            status = run_cli("status", env={"HEALTHCHECK_AGENT_SERVER": f"127.0.0.1:{port}"})
            assert (
                "remediation (agent): Remediating: maintenance: done; slot node-healthcheck-slot-"
                in status.stdout
            )
            emu.events = []
            wait_for(
                lambda: not node(cluster, node_name)["spec"].get("unschedulable"), what="uncordon"
            )
            wait_for(lambda: record(node(cluster, node_name)) == {}, what="record removed")
            assert our_taints(node(cluster, node_name)) == []
            wait_for(lambda: "RemediationUndone" in node_events(cluster, node_name), what="events")
        finally:
            code = stop_agent(agent)
    reasons = node_events(cluster, node_name)
    for reason in (
        "RemediationStarted",
        "NodeTainted",
        "NodeCordoned",
        "DrainStarted",
        "PodsEvicted",
        "DrainDone",
    ):
        assert reason in reasons
    assert code == 0


def test_killed_holder_frees_its_slot_after_the_lease(cluster, names, bin_path, tmp_path):
    """A real agent holds the only slot and is SIGKILLed mid-drain (a PDB keeps it draining);
    its Lease stops being renewed, and another node proceeds after one lease duration."""
    import signal

    node_a, ns = names
    node_b = f"{node_a}-b"
    cluster.create_node(node_b)
    make_pod(cluster, ns, "db", node_a, labels={"app": "db"}, running=True)
    make_pdb(cluster, ns, "db-pdb", {"app": "db"}, allowed=0)
    remediation = """\
remediation:
  maxConcurrent: 1
  minInterval: 0s
  nodeGrace: 0s
  leaseDuration: 2s
  pollInterval: 1s
  rules:
    - {name: test, when: {condition: TestDisruption}, actions: [cordon, drain], minHold: 0s}
"""
    disruption = [
        {
            "type": "TestDisruption",
            "status": "True",
            "reason": "Test",
            "message": "t",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "lastHeartbeatTime": "2026-01-01T00:00:00Z",
        }
    ]
    for name in (node_a, node_b):
        status, _ = cluster.request(
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            body={"status": {"conditions": disruption}},
            content_type="application/strategic-merge-patch+json",
        )
        assert status == 200
    agent = start_agent(
        bin_path, cluster, tmp_path, node_a, 'metrics: ""\nserver: ""\nchecks: []\n' + remediation
    )
    try:
        wait_for(lambda: node(cluster, node_a)["spec"].get("unschedulable"), what="A cordoned")
        wait_for(lambda: "DrainBlocked" in node_events(cluster, node_a), what="A blocked mid-drain")
        conditions, events = Conditions(owned=()), Events()
        settings_b = settings(
            leaseDuration="2s",
            rules=[
                {
                    "name": "test",
                    "when": {"condition": "TestDisruption"},
                    "actions": ["cordon", "drain"],
                    "minHold": "0s",
                }
            ],
        )
        ctl = controller(cluster, node_b, settings_b, conditions, events)
        run_until(ctl, lambda: "RemediationWaiting" in events.reasons(), what="B waiting")
        for _ in range(10):  # B keeps waiting while A is alive and renewing
            ctl.step()
            time.sleep(0.1)
        assert not node(cluster, node_b)["spec"].get("unschedulable")
        agent.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        agent.wait(5)
        run_until(
            ctl, lambda: node(cluster, node_b)["spec"].get("unschedulable"), what="B proceeds"
        )
        waited = time.monotonic() - killed
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(5)
    assert waited >= 1.5  # not before A's lease had run out (2s, less A's last renewal age)
    assert [lease["spec"].get("holderIdentity") for lease in leases(cluster)] == [node_b]
    assert node(cluster, node_a)["spec"]["unschedulable"] is True  # nobody undoes a dead node's


def test_agent_dry_run_prints_would_and_changes_nothing(cluster, names, bin_path, tmp_path):
    """``healthcheck agent --dry-run --kubeconfig``: reads the live node, prints the Events it
    would record (``dry run: would ...``) with its other writes, and writes nothing."""
    import json
    import subprocess

    from metadata_emulator import MetadataEmulator

    node_name, ns = names
    make_pod(cluster, ns, "web", node_name)
    before = node(cluster, node_name)["metadata"]["resourceVersion"]
    with MetadataEmulator("alibaba", [alibaba_event(time.time() + 60)]) as emu:
        path = tmp_path / "agent.yaml"
        path.write_text(AGENT_CONFIG.format(port=free_port(), url=emu.url, state=tmp_path))
        out = (tmp_path / "out.jsonl").open("w")
        proc = subprocess.Popen(
            [
                bin_path("healthcheck"),
                "agent",
                "--config",
                str(path),
                "--dry-run",
                "--kubeconfig",
                str(cluster.kubeconfig("agent")),
                "--node-name",
                node_name,
            ],
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: "would evict 1 pod(s)" in (tmp_path / "out.jsonl").read_text(),
                what="dry drain",
            )
        finally:
            code = stop_agent(proc)
            out.close()
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    messages = [line["body"].get("message") for line in lines if line["path"].endswith("/events")]
    assert "dry run: would cordon the node" in messages
    assert f"dry run: would evict 1 pod(s): {ns}/web" in messages
    assert node(cluster, node_name)["metadata"]["resourceVersion"] == before
    assert not pod(cluster, ns, "web")["metadata"].get("deletionTimestamp")
    assert leases(cluster) == []
    assert code == 0


# ------------------------------------------------------------------ review: safety defects


def cordon_by_hand(env, node_name: str, cordoned: bool) -> None:
    """An operator's ``kubectl cordon``/``uncordon`` (a plain merge patch, no precondition)."""
    status, _ = env.request(
        "PATCH",
        f"/api/v1/nodes/{node_name}",
        body={"spec": {"unschedulable": True if cordoned else None}},
        content_type="application/merge-patch+json",
    )
    assert status == 200


def test_operator_uncordon_while_we_hold_makes_a_later_cordon_theirs(cluster, names):
    """We cordon; an operator uncordons while we hold, then cordons again for their own
    reasons; when the condition clears, their cordon stays (the ownership was dropped when the
    uncordon was seen, and that was written on the Node)."""
    node_name, _ = names
    conditions, events = Conditions(), Events()
    remediation = settings(rules=rules(actions=["taint", "cordon"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "NodeCordoned" in events.reasons(), what="our cordon")
    assert record(node(cluster, node_name))["cordoned"] is True
    cordon_by_hand(cluster, node_name, False)
    run_until(ctl, lambda: "CordonOverridden" in events.reasons(), what="uncordon seen")
    assert "cordoned" not in record(node(cluster, node_name))
    assert not node(cluster, node_name)["spec"].get("unschedulable")  # not cordoned again
    cordon_by_hand(cluster, node_name, True)
    conditions.set(MAINT, "False")
    run_until(ctl, lambda: "RemediationUndone" in events.reasons(), what="undo")
    got = node(cluster, node_name)
    assert got["spec"]["unschedulable"] is True  # the operator's second cordon
    assert our_taints(got) == []
    assert "uncordon" not in events.messages("RemediationUndone")[0]


def test_a_gate_time_in_the_future_closes_the_gate_for_one_interval_only(cluster, names):
    """A node whose clock runs far ahead (or a hand-edited gate Lease) writes a last start in
    the future: the fleet waits one minInterval from when it saw it, not until that time."""
    from healthcheck._agent.remediation.slots import LABEL, PREFIX

    node_name, _ = names
    gate = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": f"{PREFIX}-gate", "labels": {LABEL: "gate"}},
        "spec": {
            "holderIdentity": "clock-ahead",
            "acquireTime": "2100-01-01T00:00:00.000000Z",
            "renewTime": "2100-01-01T00:00:00.000000Z",
        },
    }
    path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
    assert cluster.request("POST", path, body=gate)[0] == 201
    conditions, events = Conditions(), Events()
    remediation = settings(minInterval="2s", rules=rules(actions=["taint"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    conditions.set(MAINT, "True")
    seen = time.monotonic()
    run_until(ctl, lambda: "RemediationWaiting" in events.reasons(), what="waiting on the gate")
    assert "clock-ahead started 0s ago (minInterval)" in events.messages("RemediationWaiting")[0]
    run_until(ctl, lambda: "NodeTainted" in events.reasons(), what="start after one interval")
    assert time.monotonic() - seen >= 1.8


def test_an_exception_in_a_step_does_not_end_the_loop(cluster, names, tmp_path, caplog):
    """An unexpected exception in a step (a bug, ours or a plugin's, that nothing nearer
    caught) is logged as one line and retried with backoff; the remediation thread lives on
    and the repair runs on the next step. (A repair hook's own exceptions are contained by the
    repair policy itself: tests/test_repair_hostile.py.)"""
    node_name, _ = names
    calls: list = []
    repairs: list = []
    checker = flaky_checker(repairs)
    ctl, conditions, _ = flaky_controller(
        cluster, node_name, tmp_path, checker, flaky_settings(repairHold="1s")
    )
    real_step = ctl._step

    def step_that_fails_once():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("plugin bug\nsecond line")
        return real_step()

    ctl._step = step_that_fails_once
    conditions.set("FlakyProblem", "True")
    with caplog.at_level("INFO", logger="healthcheck._agent.remediation"):
        ctl.start()
        try:
            wait_for(lambda: repairs, timeout=30, what="the repair run after the failure")
            assert ctl._thread.is_alive()
        finally:
            ctl.stop()
    logged = [record.getMessage() for record in caplog.records]
    (failure,) = [line for line in logged if "plugin bug" in line]
    assert failure == "remediation: unexpected error: RuntimeError: plugin bug second line"
    assert calls[1] - calls[0] >= 0.2  # backed off, not a hot loop


def test_an_absurd_not_before_reads_as_unknown(cluster, names):
    """A check's data is untrusted: an infinite or out-of-range not-before acts at once, as an
    unknown time does, and never breaks the loop."""
    from types import SimpleNamespace

    from healthcheck._agent.scheduler import Report
    from healthcheck._protocol import Result

    node_name, _ = names
    conditions, events = Conditions(), Events()
    remediation = settings(rules=rules(actions=["taint"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    spec = SimpleNamespace(permanent=True, condition=MAINT)
    conditions.set(MAINT, "True")
    for value in (float("inf"), float("nan"), 1e300, -5):
        ctl.observe(Report(spec, Result.problem("m", data={"not_before": value}), 0.0, False))
        assert ctl._observe(ctl.config.rules[0], time.time()).not_before is None
    run_until(ctl, lambda: "NodeTainted" in events.reasons(), what="taint at once")


def test_dry_run_undo_says_what_the_real_one_would_do(cluster, names):
    """On an operator-cordoned node a dry run says it would leave the cordon, and its undo does
    not claim it would uncordon."""
    node_name, _ = names
    cordon_by_hand(cluster, node_name, True)
    conditions, events = Conditions(), Events()
    remediation = settings(rules=rules(actions=["taint", "cordon"]))
    ctl = controller(cluster, node_name, remediation, conditions, events, dry_run=True)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "AlreadyCordoned" in events.reasons(), what="dry cordon step")
    conditions.set(MAINT, "False")
    run_until(ctl, lambda: "RemediationUndone" in events.reasons(), what="dry undo")
    (undone,) = events.messages("RemediationUndone")
    assert "uncordon" not in undone and "would" in undone


def test_a_held_slot_is_still_renewed_while_steps_fail(cluster, names):
    """The agent loses its right to list pods mid-drain (every step fails with 403): it backs
    off, but never past a third of the lease, so its slot does not lapse while its cordon
    stays, and a second node never starts beyond maxConcurrent 1."""
    node_a, ns = names
    node_b = f"{node_a}-b"
    cluster.create_node(node_b)
    make_pod(cluster, ns, "web", node_a)
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles/node-healthcheck-remediation"
    role = cluster.request("GET", path)[1]
    conditions, events = Conditions(), Events()
    remediation = settings(leaseDuration="3s")
    ctl = controller(cluster, node_a, remediation, conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "NodeCordoned" in events.reasons(), what="A cordoned")
    crippled = {**role, "rules": [r for r in role["rules"] if r["resources"] != ["pods"]]}
    assert cluster.request("PUT", path, body=crippled)[0] == 200
    other, events_b = Conditions(), Events()
    ctl_b = controller(cluster, node_b, remediation, other, events_b)
    other.set(MAINT, "True")
    try:
        wait_for(lambda: ctl.failures > 0 or ctl.step() < 0, timeout=10, what="A failing")
        ctl.start()
        deadline = time.monotonic() + 12  # four lease durations, backoff would reach 8 s
        while time.monotonic() < deadline:
            time.sleep(min(0.2, ctl_b.step()))
            assert not node(cluster, node_b)["spec"].get("unschedulable")
        assert ctl.failures >= 4 and "pods" in ctl.last_error
        assert [lease["spec"].get("holderIdentity") for lease in leases(cluster)] == [node_a]
    finally:
        ctl.stop()
        restored = cluster.request("GET", path)[1]
        restored["rules"] = role["rules"]
        assert cluster.request("PUT", path, body=restored)[0] == 200


def test_waiting_is_measured_while_it_lasts_and_ends_when_the_condition_clears(cluster, names):
    """A node waiting for a slot: the wait-time metric grows while it waits (not only once a
    slot comes), and when its condition clears before a slot comes it no longer shows as
    waiting (status, /conditions, metric)."""
    from prometheus_client import CollectorRegistry

    from healthcheck._agent.remediation.metrics import RemediationMetrics
    from healthcheck._agent.remediation.wiring import conditions_entry

    node_a, _ = names
    node_b = f"{node_a}-b"
    cluster.create_node(node_b)
    remediation = settings(rules=rules(actions=["taint"]))
    holder, holder_events = Conditions(), Events()
    ctl_a = controller(cluster, node_a, remediation, holder, holder_events)
    holder.set(MAINT, "True")
    run_until(ctl_a, lambda: "NodeTainted" in holder_events.reasons(), what="A holds the slot")
    registry = CollectorRegistry()
    conditions, events = Conditions(), Events()
    metrics = RemediationMetrics(registry, [])
    ctl = controller(cluster, node_b, remediation, conditions, events, metrics=metrics)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "RemediationWaiting" in events.reasons(), what="B waiting")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        # A keeps renewing its slot, as its own thread would: on a slow machine B (stepped
        # here) would otherwise see A's 2 s lease lapse and take the slot over.
        ctl_a.step()
        time.sleep(min(0.1, ctl.step()))
    assert registry.get_sample_value("healthcheck_remediation_slot_wait_seconds_total") >= 1
    assert conditions_entry(ctl.snapshot())["reason"] == "WaitingForSlot"
    conditions.set(MAINT, "False")
    ctl.step()
    assert ctl.snapshot()["waiting"] is None
    assert conditions_entry(ctl.snapshot())["reason"] == "Idle"
    assert registry.get_sample_value("healthcheck_remediation_waiting") == 0
    assert "RemediationSlotAcquired" not in events.reasons()


def test_a_new_node_is_left_alone_for_the_grace_period(cluster, names):
    from healthcheck._agent.clock import parse_rfc3339

    node_name, _ = names
    conditions, events = Conditions(), Events()
    remediation = settings(nodeGrace="3s", rules=rules(actions=["taint"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    created = parse_rfc3339(node(cluster, node_name)["metadata"]["creationTimestamp"])
    conditions.set(MAINT, "True")
    ctl.step()
    assert ctl.snapshot()["rules"][0]["phase"] == "pending"
    run_until(ctl, lambda: "NodeTainted" in events.reasons(), what="taint after the grace")
    assert time.time() - created >= 3


@pytest.mark.parametrize("junk", ["{not json", "x" * 100_000, '{"rules": {"maintenance": 7}}'])
def test_our_annotation_edited_to_junk_mid_remediation(cluster, names, junk):
    """Someone overwrites our record while we hold the node: it reads as empty, the loop
    carries on; our taint is still removed at the undo (its key is ours), but the cordon can
    no longer be proved ours, so it is left (never undo what may be an operator's)."""
    node_name, _ = names
    conditions, events = Conditions(), Events()
    remediation = settings(rules=rules(actions=["taint", "cordon"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "NodeCordoned" in events.reasons(), what="our cordon")
    status, _ = cluster.request(
        "PATCH",
        f"/api/v1/nodes/{node_name}",
        body={"metadata": {"annotations": {"remediation.node-healthcheck.io/state": junk}}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    ctl.store.view = None  # as after a restart: the Node is read afresh
    run_until(ctl, lambda: "AlreadyCordoned" in events.reasons(), what="carried on")
    conditions.set(MAINT, "False")
    run_until(ctl, lambda: "RemediationUndone" in events.reasons(), what="undo")
    got = node(cluster, node_name)
    assert our_taints(got) == []
    assert got["spec"]["unschedulable"] is True
    assert record(got) == {}
    assert ctl.last_error == ""


def test_the_node_deleted_and_recreated_mid_remediation(cluster, names):
    """The Node object goes away while we hold it (errors are logged and backed off, never a
    crash), then comes back fresh (no taint, no cordon, no record): the condition still holds,
    so the new Node is remediated from the start, in the slot this node already holds."""
    node_name, _ = names
    conditions, events = Conditions(), Events()
    remediation = settings(leaseDuration="30s", rules=rules(actions=["taint", "cordon"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "NodeCordoned" in events.reasons(), what="our cordon")
    slot = ctl.budget.held["metadata"]["name"]
    cluster.delete_node(node_name)
    run_until(ctl, lambda: ctl.failures >= 2, what="failures while the Node is gone")
    assert "404" in ctl.last_error or "not found" in ctl.last_error.lower()
    cluster.create_node(node_name)
    run_until(ctl, lambda: events.reasons().count("NodeCordoned") == 2, what="new Node cordoned")
    got = node(cluster, node_name)
    assert got["spec"]["unschedulable"] is True and our_taints(got) == [TAINT]
    assert record(got)["cordoned"] is True
    assert ctl.budget.held["metadata"]["name"] == slot
    assert [lease["spec"].get("holderIdentity") for lease in leases(cluster)] == [node_name]


def test_the_reporters_status_patch_between_our_read_and_write(cluster, names):
    """The agent's reporter PATCHes the Node's status right after each of our first reads (a
    real concurrent write, timed on purpose): our conditional patch is refused (409), we read
    again and decide afresh; in the end one taint, one cordon, one record, and the reporter's
    condition intact."""
    node_name, _ = names
    conditions, events = Conditions(), Events()
    remediation = settings(rules=rules(actions=["taint", "cordon"]))
    ctl = controller(cluster, node_name, remediation, conditions, events)
    ctl.step()  # the first read, before anything is due
    real_get, real_patch = ctl.api.get_node, ctl.api.patch_node
    races, refused = [3], []

    def get_then_the_reporter_writes(name):
        got = real_get(name)
        if races[0] > 0:
            races[0] -= 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            condition = {
                "type": "ReporterHeartbeat",
                "status": "False",
                "reason": "Fine",
                "message": f"beat {races[0]}",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
            status, _ = cluster.request(
                "PATCH",
                f"/api/v1/nodes/{name}/status",
                body={"status": {"conditions": [condition]}},
                content_type="application/strategic-merge-patch+json",
            )
            assert status == 200
        return got

    def counting_patch(name, body):
        try:
            return real_patch(name, body)
        except Exception as exc:
            refused.append(getattr(exc, "status", None))
            raise

    ctl.api.get_node, ctl.api.patch_node = get_then_the_reporter_writes, counting_patch
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "NodeCordoned" in events.reasons(), what="cordon after the races")
    assert refused and set(refused) == {409}
    got = node(cluster, node_name)
    assert our_taints(got) == [TAINT] and got["spec"]["unschedulable"] is True
    assert record(got)["rules"]["maintenance"]["done"] == ["taint", "cordon"]
    assert events.reasons().count("NodeTainted") == 1
    assert events.reasons().count("RemediationStarted") == 1
    assert cluster.node_conditions(node_name)["ReporterHeartbeat"]["message"] == "beat 0"


def test_state_of_a_rule_no_longer_configured_is_reported_once(cluster, names):
    """A rule removed from the config left its record, taint and cordon on the Node: they are
    left alone (nothing knows that rule's condition any more) and a Warning says so, once."""
    node_name, _ = names
    conditions, events = Conditions(), Events()
    old = settings(rules=rules(name="old-maintenance", actions=["taint", "cordon"]))
    first = controller(cluster, node_name, old, conditions, events)
    conditions.set(MAINT, "True")
    run_until(first, lambda: "NodeCordoned" in events.reasons(), what="the old rule's cordon")
    events2 = Events()
    ctl = controller(
        cluster, node_name, settings(rules=rules(actions=["taint"])), conditions, events2
    )
    for _ in range(3):
        ctl.store.view = None  # read afresh each time
        ctl.step()
    (warning,) = events2.messages("RemediationOrphaned")
    assert "no longer configured: old-maintenance;" in warning
    got = node(cluster, node_name)
    assert got["spec"]["unschedulable"] is True
    assert "old-maintenance" in record(got)["rules"]


def test_a_slot_lease_claiming_decades_is_believed_only_up_to_a_cap(cluster, names, monkeypatch):
    """A slot Lease whose holder never renews but claims leaseDurationSeconds 2^31-1 (corrupt,
    or hand-written) frees after MAX_FOREIGN_LEASE (here 1 s), not in 68 years."""
    from healthcheck._agent.remediation import slots

    monkeypatch.setattr(slots, "MAX_FOREIGN_LEASE", 1.0)
    node_name, _ = names
    ghost = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": f"{slots.PREFIX}-0", "labels": {slots.LABEL: "slot"}},
        "spec": {
            "holderIdentity": "ghost",
            "leaseDurationSeconds": 2**31 - 1,
            "renewTime": "2026-01-01T00:00:00.000000Z",
        },
    }
    path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
    assert cluster.request("POST", path, body=ghost)[0] == 201
    conditions, events = Conditions(), Events()
    ctl = controller(
        cluster, node_name, settings(rules=rules(actions=["taint"])), conditions, events
    )
    conditions.set(MAINT, "True")
    run_until(ctl, lambda: "RemediationWaiting" in events.reasons(), what="waiting on the ghost")
    run_until(ctl, lambda: "NodeTainted" in events.reasons(), timeout=15, what="ghost slot freed")
    assert [lease["spec"].get("holderIdentity") for lease in leases(cluster)] == [node_name]
