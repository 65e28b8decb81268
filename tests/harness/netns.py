"""The black-box tests' network namespaces: chat/lab/netns.py (the lab runs processes in
namespaces too), re-exported here for the tests."""

from chat.lab.netns import DATA_DEVICE, Namespace, Star, namespaces_problem, run

__all__ = ["DATA_DEVICE", "Namespace", "Star", "namespaces_problem", "run"]
