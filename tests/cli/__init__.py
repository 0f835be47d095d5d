"""The command line: config, doctor, owner, inspect, purge, simulate, lb-config."""
