"""Opt-in reliability telemetry (docs/telemetry.md).

`chat.telemetry.schema` is the wire format both sides share: the client that records and
uploads events, and the collector (`chat.telemetry.collector`) that ingests them and computes
the reliability report. `chat.telemetry.identifiers` derives the blinded references that let
the collector match a sender with its receivers without learning keys, topics or content.

The client's sans-IO parts sit here too (`settings`, `recorder`, `outbox`, `schedule`,
`http`); its trio service, the hook on the messenger and the "what we send" view are in
`chat.telemetry.client`.
"""
