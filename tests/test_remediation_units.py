"""Pure parts of remediation: which pods a drain evicts, grace caps, PDB names, Lease times,
slot expiry by observation, and the Node patch bodies."""

from __future__ import annotations

from healthcheck._agent.remediation import drain
from healthcheck._agent.remediation.api import RemediationError
from healthcheck._agent.remediation.node import ANNOTATION, NodeView, patch_body
from healthcheck._agent.remediation.rules import Record, RuleState
from healthcheck._agent.remediation.slots import Budget, micro_time, parse_micro_time


def pod(owner="ReplicaSet", annotations=None, volumes=None, phase="Running", deleting=False):
    meta = {"name": "p", "namespace": "ns", "annotations": annotations or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"volumes": volumes or []}, "status": {"phase": phase}}


def test_classify_follows_kubectl_drain():
    assert drain.classify(pod()) == (drain.EVICT, "")
    assert drain.classify(pod("DaemonSet"))[0] == drain.SKIP
    assert drain.classify(pod(annotations={drain.MIRROR: "x"}))[0] == drain.SKIP
    assert drain.classify(pod(deleting=True)) == (drain.WAIT, "still terminating")
    assert drain.classify(pod("DaemonSet", deleting=True))[0] == drain.SKIP
    assert drain.classify(pod(annotations={drain.OPT_OUT: "true"}))[0] == drain.SKIP
    assert drain.classify(pod(annotations={drain.OPT_OUT: "no"}))[0] == drain.EVICT
    empty = [{"name": "cache", "emptyDir": {}}]
    assert drain.classify(pod(volumes=empty))[0] == drain.REFUSE
    assert drain.classify(pod(volumes=empty), delete_emptydir_data=True)[0] == drain.EVICT
    assert drain.classify(pod(owner=None))[0] == drain.REFUSE
    assert drain.classify(pod(owner=None), force=True)[0] == drain.EVICT
    assert drain.classify(pod(owner=None, phase="Succeeded"))[0] == drain.EVICT
    assert drain.classify({"metadata": "junk", "spec": None})[0] == drain.REFUSE


def test_grace_is_capped_and_defaults_to_30():
    assert drain.grace_seconds({"spec": {"terminationGracePeriodSeconds": 600}}, 60) == 60
    assert drain.grace_seconds({"spec": {"terminationGracePeriodSeconds": 5}}, 60) == 5
    assert drain.grace_seconds({"spec": {}}, 60) == 30
    assert drain.grace_seconds({"spec": {"terminationGracePeriodSeconds": True}}, 60) == 30


def test_pdb_name_from_the_429_causes():
    error = RemediationError(
        "evict: HTTP 429", 429, causes=["The disruption budget db-pdb needs 1 healthy pods"]
    )
    assert drain.pdb_of(error) == "db-pdb"
    assert drain.pdb_of(RemediationError("x", 429)) == ""


def test_micro_time_round_trip():
    assert micro_time(1_800_000_000.25) == "2027-01-15T08:00:00.250000Z"
    assert parse_micro_time("2027-01-15T08:00:00.250000Z") == 1_800_000_000.25
    assert parse_micro_time("2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert parse_micro_time("junk") is None and parse_micro_time(None) is None


def lease(holder, renew="2026-01-01T00:00:00.000000Z", rv="1", duration=10):
    spec = {"renewTime": renew, "leaseDurationSeconds": duration}
    if holder:
        spec["holderIdentity"] = holder
    return {"metadata": {"name": "s-0", "resourceVersion": rv}, "spec": spec}


def test_expiry_is_judged_on_this_nodes_clock_not_the_holders():
    clock = [100.0]
    budget = Budget(None, "ns", "me", lease_duration=10.0, monotonic=lambda: clock[0])
    assert budget._expired(lease(None), clock[0])  # released: free at once
    # a renewTime far in the past means nothing: the record must be seen unchanged 10 s
    assert not budget._expired(lease("a"), clock[0])
    clock[0] += 9.9
    assert not budget._expired(lease("a"), clock[0])
    clock[0] += 0.2
    assert budget._expired(lease("a"), clock[0])
    # a renewal (new resourceVersion) restarts the wait
    assert not budget._expired(lease("a", rv="2"), clock[0])


def test_patch_bodies_are_conditional_and_carry_the_record():
    view = NodeView(
        {
            "metadata": {"resourceVersion": "7", "annotations": {}},
            "spec": {"taints": [{"key": "other", "effect": "NoExecute"}]},
        }
    )
    record = Record({"m": RuleState(1.0, ["taint"])})
    body = patch_body(view, record, add_taints=["ours"], unschedulable=True)
    assert body["metadata"]["resourceVersion"] == "7"
    assert body["spec"] == {
        "taints": [
            {"key": "other", "effect": "NoExecute"},
            {"key": "ours", "effect": "NoSchedule"},
        ],
        "unschedulable": True,
    }
    assert Record.loads(body["metadata"]["annotations"][ANNOTATION]).rules == record.rules
    undo = patch_body(view, Record(), remove_taints=["other"], unschedulable=False)
    assert undo["spec"] == {"taints": None, "unschedulable": None}
    assert undo["metadata"]["annotations"] == {ANNOTATION: None}


def test_maintenance_checker_passes_not_before_as_data():
    from healthcheck._protocol import Result, Status
    from healthcheck_plugins.maintenance_events.checker import judge
    from healthcheck_plugins.maintenance_events.metadata.events import Event, Reading

    events = [
        Event("e-2", "SystemMaintenance.Reboot", "Scheduled", "2026-11-24T02:00:00Z"),
        Event("e-1", "SystemMaintenance.Redeploy", "Inquiring", "2026-11-23T02:00:00Z"),
    ]
    result = judge(Reading(events), "alibaba")
    assert result.status == Status.PROBLEM
    assert result.data == {"not_before": 1795399200}  # the soonest, as epoch seconds
    no_time = judge(Reading([Event("e-3", "SystemMaintenance.Reboot", "Scheduled")]), "alibaba")
    assert no_time.status == Status.PROBLEM and no_time.data is None
    assert judge(Reading([]), "alibaba").data is None
    # data never changes what a result is equal to, nor what is printed
    assert Result.problem("m", data={"not_before": 1}) == Result.problem("m")


def test_remediation_rbac_file_grants_exactly_what_remediation_calls():
    """Static view of packaging/kubernetes/remediation/rbac.yaml (the real server checks the
    effective rights in test_remediation_real.py)."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parent.parent / "packaging/kubernetes/remediation/rbac.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)

    def grants(role):
        found = set()
        for rule in role["rules"]:
            assert set(rule) == {"apiGroups", "resources", "verbs"}
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    found |= {(group, resource, verb) for verb in rule["verbs"]}
        assert not any("*" in item for item in found)
        return found

    (cluster_role,) = by_kind["ClusterRole"]
    (role,) = by_kind["Role"]
    assert grants(cluster_role) == {
        ("", "nodes", "patch"),
        ("", "nodes", "list"),
        ("", "pods", "list"),
        ("", "pods/eviction", "create"),
    }
    assert grants(role) == {
        ("coordination.k8s.io", "leases", v) for v in ("list", "create", "update")
    }
    assert role["metadata"]["namespace"] == by_kind["Namespace"][0]["metadata"]["name"]
    subject = {"kind": "ServiceAccount", "name": "node-healthcheck", "namespace": "kube-system"}
    for binding in by_kind["ClusterRoleBinding"] + by_kind["RoleBinding"]:
        assert binding["subjects"] == [subject]


def test_record_times_must_be_sane_epochs():
    for bad in ("NaN", "Infinity", "-1", "1e300"):
        text = '{"rules": {"m": {"started": ' + bad + ', "done": []}}}'
        assert Record.loads(text).rules == {}, bad
    held = Record.loads('{"rules": {"m": {"started": 5, "done": [], "holdUntil": Infinity}}}')
    assert held.rules["m"].hold_until is None
