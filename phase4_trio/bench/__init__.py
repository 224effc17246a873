"""``phase4 bench``: the performance suite (see docs/performance.md for the latest table).

:mod:`.command` is the CLI side (kept light: the CLI builds its parser from it), :mod:`.suite`
runs the scenarios against a real engine, :mod:`.client` is the separate client process,
:mod:`.report` holds the targets and renders the table, the JSON and the doc.
"""
