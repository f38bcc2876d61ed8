"""Demo content for an emulated cluster: a few namespaces with the objects an ingress
controller cares about, so `mic` has something to show right after `--seed-demo`."""

from __future__ import annotations

from mic.testing.emulator import KubeEmulator


def seed_demo(emulator: KubeEmulator) -> None:
    """Create namespaces `shop` and `blog`, each with a service, an ingress and a configmap."""
    emulator.create(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "mic"},
            "spec": {"controller": "example.com/mic"},
        }
    )
    for app in ("shop", "blog"):
        emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}})
        labels = {"app": app}
        emulator.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": app, "namespace": app, "labels": labels},
                "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            }
        )
        emulator.create(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": app, "namespace": app, "labels": labels},
                "spec": {
                    "ingressClassName": "mic",
                    "rules": [
                        {
                            "host": f"{app}.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": app, "port": {"number": 80}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        )
        emulator.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{app}-config", "namespace": app, "labels": labels},
                "data": {"greeting": f"hello from {app}"},
            }
        )
