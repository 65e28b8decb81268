"""The telemetry client beside the messenger (docs/telemetry.md, "The client"): the hook on
the messenger's events, the trio service that persists and uploads, the wiring into
`chinwag serve`, and the "what we send" view. It sits with the core (it observes the
messenger); the sans-IO parts it drives (settings, recorder, outbox, schedule) are in
chat/telemetry beside the wire format and import nothing else of chat/."""
