"""A Kubernetes API server emulator for tests, demos and benchmarks.

`KubeEmulator` serves the Kubernetes REST protocol on a real socket; see
`mic.testing.emulator` for what it emulates and where it differs from kube-apiserver,
`mic.testing.pytest_plugin` for the `kube_emulator` / `kube_emulators` fixtures, and
`mic.testing.objects` for builders of the objects a controller watches (`service`,
`endpointslice`, `endpoints`, `secret`, `pod`, `configmap`, `ingress`, `namespace`).

    async with KubeEmulator("c1", tokens={"t": TokenPolicy.allow_all()}) as emu:
        kubeconfig = emu.kubeconfig()          # point the client under test here
        emu.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
        emu.drop_watches()                     # then watch the client recover
"""

from mic.testing.emulator import KubeEmulator, RequestRecord, StatusError, TokenPolicy

__all__ = ["KubeEmulator", "RequestRecord", "StatusError", "TokenPolicy"]
