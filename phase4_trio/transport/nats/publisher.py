"""The engine's NATS output: every spectrum, once, as P4SP on ``PREFIX.ID.spectra``.

A subscriber of the router like any other output: its own bounded channel (latest wins, its
losses counted as the ``nats`` endpoint's drops) and its own task, which hands each batch to
the :class:`NatsLink` without waiting. The stream's metadata is announced on ``PREFIX.ID.meta``
at every (re)connection and is the answer to a request on that subject.
"""

from __future__ import annotations

import trio

from ... import metrics as m
from ...config import NatsConfig
from ...pipeline.router import Router
from .codec import StreamMeta, spectrum_payload
from .link import NatsLink, link_metrics
from .naming import meta_subject, spectra_subject

# Batches waiting for the publishing task (latest wins): at real time it takes each one as it
# comes; this covers a stall of at least ~0.4 s at 172 spectra/s before the oldest are dropped.
QUEUE = 64


class NatsPublisher:
    def __init__(
        self, config: NatsConfig, *, sample_rate: int, block_size: int, fft_size: int
    ) -> None:
        engine_id = config.effective_engine_id
        self.subject = spectra_subject(config.subject_prefix, engine_id)
        self.meta = StreamMeta(engine_id, sample_rate, block_size, fft_size, self.subject)
        meta = meta_subject(config.subject_prefix, engine_id)
        announcement = self.meta.encode()
        self.link = NatsLink(
            config.servers,
            name=f"phase4 engine {engine_id}",
            replies={meta: announcement},
            announce=((meta, announcement),),
        )

    async def run(
        self, router: Router, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Publish until cancelled; started before the first connection is made."""
        with router.subscribe("nats", QUEUE) as subscription:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.link.run)
                task_status.started()
                publish, subject = self.link.publish, self.subject
                while True:
                    spectra = await subscription.next()
                    publish(subject, [spectrum_payload(spectrum) for spectrum in spectra])

    def metrics(self) -> list[m.Metric]:
        return link_metrics(self.link)
