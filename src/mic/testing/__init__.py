"""A Kubernetes API server emulator for tests, demos and benchmarks."""
