"""The component family: is a node component (kubelet, kube-proxy, docker, a CRI runtime) healthy?

NPD's ``pkg/healthchecker`` and its ``cmd/healthchecker`` front door, kept side by side: one
module per checker, the shared checker factory, and the drop-in ``health-checker`` command in
:mod:`.cmd`.
"""
