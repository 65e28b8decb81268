"""Waku Sync: store nodes reconcile their archives (reconciliation) and send each other
what the other lacks (transfer)."""
