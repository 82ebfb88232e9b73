"""The ``voxwire`` command line: one module per command, plus the configuration file."""
