"""Reliability: message states and the outbox, SDS end-to-end acknowledgements, store checks."""
