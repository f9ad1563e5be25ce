"""The image built from packaging/Dockerfile: what is in it, and its default user."""

from __future__ import annotations

import json
import tarfile

from cluster import deploy, image


def image_files(built: image.Image) -> set[str]:
    names = set()
    with tarfile.open(built.archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:  # type: ignore[arg-type]
                names.update(m.name.lstrip("./") for m in inner)
    return names


def test_image_holds_the_agent_and_no_build_tools(agent_image):
    config = image.archive_config(agent_image)["config"]
    assert config["Entrypoint"] == ["healthcheck"]
    assert config["Cmd"] == ["agent", "--config", "/etc/node-healthcheck/agent.yaml"]
    assert config["User"] == "10001:10001"
    files = image_files(agent_image)
    assert "opt/node-healthcheck/bin/healthcheck" in files
    assert "opt/node-healthcheck/bin/health-checker" in files
    assert "etc/node-healthcheck/agent.yaml" in files
    # build stage only: compilers, headers, pip
    for absent in ("usr/bin/gcc", "usr/include/systemd/sd-journal.h",
                   "opt/node-healthcheck/bin/pip"):  # fmt: skip
        assert absent not in files, absent


def test_image_runs_checks_as_its_non_root_user(cluster, agent_image):
    """Without the DaemonSet's runAsUser the image is uid 10001, and a check runs as it."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "image-default-user", "namespace": "default"},
        "spec": {
            "hostNetwork": True,  # the only network this cluster's CNI offers
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "check",
                    "image": agent_image.name,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "id -u && exec healthcheck check conntrack"],
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:

        def finished():
            phase = cluster.get_json("pod", "-n", "default", "image-default-user")["status"]
            return phase.get("phase") if phase.get("phase") in ("Succeeded", "Failed") else None

        assert deploy.wait_for(finished, 120, "the check pod to finish") == "Succeeded"
        logs = cluster.kubectl("logs", "-n", "default", "image-default-user").stdout.splitlines()
        assert logs[0] == "10001"
        assert logs[1].startswith("Conntrack table usage")
    finally:
        cluster.kubectl("delete", "pod", "-n", "default", "image-default-user", "--wait=false")
