"""Past one machine: spectra published through NATS, and relays that serve them to browsers.

``naming`` and ``codec`` are pure (subjects, identifiers, URLs, the metadata message, P4SP back
into spectra); ``link`` runs nats-py's asyncio client beside Trio; ``publisher`` is the engine's
NATS output. ``phase4 relay`` (:mod:`phase4_trio.relay`) serves what it publishes;
docs/scaling.md describes the topology.
"""
