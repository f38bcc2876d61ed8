"""A Kubernetes API server emulator for tests, demos and benchmarks.

`KubeEmulator` serves the Kubernetes REST protocol on a real socket; see
`mic.testing.emulator` for what it emulates and where it differs from kube-apiserver, and
`mic.testing.pytest_plugin` for the `kube_emulator` / `kube_emulators` fixtures.
"""

from mic.testing.emulator import KubeEmulator, RequestRecord, StatusError, TokenPolicy

__all__ = ["KubeEmulator", "RequestRecord", "StatusError", "TokenPolicy"]
