"""Store v3 (`/vac/waku/store-query/3.0.0`): wire codec, sans-IO query core, server, client."""
