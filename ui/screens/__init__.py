"""The TUI's screens: unlock, onboarding, main, contacts, outbox, trace, help, verify, link."""
