"""The command line: run.py hands over to dispatch.main; the stress subcommands, the shared
flags and exit codes, the live progress line."""
