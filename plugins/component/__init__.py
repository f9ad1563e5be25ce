"""The component family: is a node component (kubelet, kube-proxy, docker, a CRI runtime) healthy?

NPD's ``pkg/healthchecker`` and its ``cmd/healthchecker`` front door, kept side by side: one
module per checker (``kubelet``, ``kube_proxy``, ``docker``, ``cri``), the shared checker factory
(``checker``) with its journal matching (``logmatch``) and Go's URL rules (``gourl``), the CRI
client (``criapi`` over ``grpcunary``, ``grpcreply`` and ``goaway``), and the drop-in
``health-checker`` command in :mod:`.cmd`.
"""
