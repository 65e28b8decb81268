"""Light push v3 and v2: wire, service node and redundant light client."""
