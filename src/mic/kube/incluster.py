"""Connection to the cluster MIC runs in, from the pod's service account (like rest.InClusterConfig).

The token is a projected, expiring token that kubelet rewrites; it is re-read every minute
(as client-go does) and after a 401, so MIC keeps working across rotations.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

from mic.kube.auth import TokenFile
from mic.kube.connection import ClusterConnection
from mic.kube.errors import ConfigError
from mic.kube.tls import load_ca, new_context

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster(
    *,
    token_path: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR / "token",
    ca_path: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR / "ca.crt",
    namespace_path: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR / "namespace",
    environ: Mapping[str, str] | None = None,
) -> ClusterConnection:
    """Connection to this pod's API server as its service account; the paths are for tests.

    The default namespace is the pod's own (the `namespace` file), as kubectl does in a pod.
    """
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError(
            "not running inside a Kubernetes pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
            "are not set); configure the cluster with a kubeconfig or a URL and token instead"
        )
    if not Path(token_path).is_file():
        raise ConfigError(
            f"no service account token at {os.fspath(token_path)!r}; mount one "
            "(automountServiceAccountToken must not be false) or use a kubeconfig"
        )
    authenticator = TokenFile(token_path, what="service account token")
    context = new_context()
    load_ca(context, file=ca_path, what="service account CA (ca.crt)")
    try:
        namespace = Path(namespace_path).read_text(encoding="utf-8").strip() or "default"
    except OSError:
        namespace = "default"
    server = f"https://{_host(host)}:{port}"
    return ClusterConnection(
        server=server,
        ssl_context=context,
        authenticator=authenticator,
        default_namespace=namespace,
        description=f"in-cluster service account to {server}",
    )


def _host(host: str) -> str:
    """Bracket IPv6 addresses so they can go into a URL (client-go uses net.JoinHostPort)."""
    try:
        return f"[{host}]" if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address) else host
    except ValueError:
        return host
