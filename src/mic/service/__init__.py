"""The service: settings, the supervisor that reconciles the store with the hub, metrics."""
