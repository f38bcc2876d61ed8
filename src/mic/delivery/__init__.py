"""Reliable delivery of matched events to subscribers: outbox, ordered lanes, retries, dead
letters, signing and sinks. Depends on `mic.events` and `mic.store` only."""
