"""Self-tests of the detectors: injected bugs (mutants/catalog.py) and upstream's threaded test
suites."""
