"""Fixtures shared by every test: emulated Kubernetes clusters (`kube_emulator(s)`)."""

pytest_plugins = ["mic.testing.pytest_plugin"]
