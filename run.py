#!/usr/bin/env python3
"""psa-stress: concurrency stress testing of the Mbed TLS PSA key store. See README.md."""
import sys

from scenarios.cli import main

if __name__ == "__main__":
    sys.exit(main())
