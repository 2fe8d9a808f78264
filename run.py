#!/usr/bin/env python3
"""psa-stress: concurrency stress testing of the Mbed TLS PSA key store. See README.md."""
import sys

from scenarios.setup import apt
from scenarios.setup.source import SetupError

if __name__ == "__main__":
    try:
        apt.ensure_python(sys.argv)    # may run this script again under Debian's python3
    except SetupError as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    from scenarios.cli.dispatch import main
    sys.exit(main())
