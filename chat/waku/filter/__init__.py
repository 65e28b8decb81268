"""Filter v2 (12/WAKU2-FILTER): wire, subscription table, service node and light client."""
