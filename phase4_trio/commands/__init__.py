"""The ``phase4`` subcommands: the only code that writes to the terminal.

:mod:`phase4_trio.cli` parses the command line and turns errors into one line each; every
module here takes a :class:`~phase4_trio.config.Config` (or parsed flags), runs one command
on the library (capture, record, config) and prints what it has to say.
"""
