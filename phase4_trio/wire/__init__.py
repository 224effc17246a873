"""Wire formats, sans-I/O: bytes in and out, no sockets, no Trio.

One builder per format, used alike by the engine, the bench and the tests:
:mod:`.json_spectrum` (the original's JSON message plus our fields), :mod:`.p4sp` (the
compact binary spectrum of ``?format=f32`` and every UDP datagram), :mod:`.osc` (OSC bundles,
on python-osc's builders) and :mod:`.wled` (WLED's audio sync v2 packet).
"""
