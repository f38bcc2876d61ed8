"""The `mic` command."""
