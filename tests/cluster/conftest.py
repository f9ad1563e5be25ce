"""The one-node cluster tier: one cluster and one deployment of packaging/kubernetes/ shared by
every test in tests/cluster/, torn down (host changes undone) as soon as the last one ends.

Skipped with one line where the cluster binaries or tools are absent; under ``CI=true`` with
``../shared/cluster`` present that is a failure instead, since a skip would then hide a gap.
A cluster that is there but does not start is always a failure.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def unavailable(reason: str):
    from shared_assets import shared_present

    message = f"one-node cluster tier: {reason}"
    if os.environ.get("CI") == "true" and shared_present("cluster"):
        pytest.fail(f"{message} (CI=true and ../shared/cluster exists: it must not skip)")
    pytest.skip(message)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="package")
def agent_image():
    """The image built from packaging/Dockerfile (cached by its inputs' digest)."""
    import healthcheck
    from cluster import image

    why = image.why_not_available()
    if why:
        unavailable(why)
    return image.build(healthcheck.__version__)


@pytest.fixture(scope="package")
def cluster(tmp_path_factory, agent_image):
    """A started one-node cluster, node Ready, the agent image imported into its containerd."""
    from shared_assets import AssetsMissing, assets

    from cluster import node

    why = node.why_not_available()
    if why:
        unavailable(why)
    try:
        assets("cluster")
        assets("envtest")
    except AssetsMissing as exc:
        unavailable(str(exc))
    one = node.OneNodeCluster(tmp_path_factory.mktemp("cluster"))
    try:
        one.start()
        one.import_image(agent_image.archive)
        yield one
    finally:
        problems = one.stop()
    assert not problems, f"teardown could not undo: {problems}"


@dataclass
class Deployment:
    """packaging/kubernetes/ as applied, with what the tests compare against."""

    overlay: Path
    types: set[str]  # condition types the shipped ConfigMap's checks own
    apply_to_condition: float
    apply_to_ready: float


@pytest.fixture(scope="package")
def deployed(cluster, tmp_path_factory) -> Deployment:
    """The shipped manifests applied (test overlay only), the pod Ready and every condition of
    the shipped ConfigMap on the node."""
    from cluster import deploy

    types = deploy.condition_types(deploy.configmap_agent_yaml())
    applied, overlay = deploy.deploy(cluster, tmp_path_factory.mktemp("deploy"))

    def first_condition():
        return set(cluster.node_conditions()) & types

    deploy.wait_for(first_condition, 120, "the agent's first condition", interval=0.1)
    seen = time.monotonic()
    deploy.wait_ready_pod(cluster, 120)
    ready = time.monotonic()
    deploy.wait_for(lambda: types <= set(cluster.node_conditions()), 60, "every condition")
    return Deployment(overlay, types, seen - applied, ready - applied)
