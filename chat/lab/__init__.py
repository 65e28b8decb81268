"""The lab: simulations and scripted scenarios of chinwag networks.

scenario.py    RelayScenario: what a relay simulation runs (nodes, faults, traffic), from TOML
relay_run.py   runs a RelayScenario on SimNetwork under a mock clock; returns the report
stats.py       the report's arithmetic: percentiles, histograms, rounding for stable JSON
"""
