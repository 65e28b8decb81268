"""Coverage-guided fuzzing (atheris) of every decoder that reads bytes from the network or disk.

`targets/` holds one module per decoder family; `worker.py` runs one target in its own
process under libFuzzer; `run.py` runs a campaign over all of them and prints a JSON summary;
`test_fuzz.py` runs each target briefly in CI. docs/fuzzing.md lists the targets.
"""
