"""The lab: simulations and scripted scenarios of chinwag networks.

scenario.py    RelayScenario: what a relay simulation runs (nodes, faults, traffic), from TOML
relay_run.py   runs a RelayScenario on SimNetwork under a mock clock; returns the report
stats.py       the report's arithmetic: percentiles, histograms, rounding for stable JSON

`chinwag lab run` (real processes under faults):
live_scenario.py  LiveScenario from TOML (errors name the line); catalog.py the shipped ones
timeline.py       which fault starts/ends when (injected time); fates.py per-message fates
link_shaper.py    latency/jitter/cap schedule (sans-IO); fault_proxy.py the TCP relay using it
live_processes.py the node/serve processes; live_run.py the orchestration; live_report.py
timers.py         `serve --timer-scale`: shorter re-send timers for short runs
"""
