from mic.testing.pytest_plugin import kube_emulator, kube_emulators

__all__ = ["kube_emulator", "kube_emulators"]
