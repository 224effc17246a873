"""The engine's NATS output: every spectrum, once, as P4SP on ``PREFIX.ID.spectra``.

A subscriber of the router like any other output: its own bounded channel (latest wins, its
losses counted as the ``nats`` endpoint's drops) and its own task, which hands each batch to
the :class:`NatsLink` without waiting. The stream's metadata is announced on ``PREFIX.ID.meta``
at every (re)connection and is the answer to a request on that subject.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from .. import metrics as m
from ..config import NatsConfig
from ..pipeline.messages import Spectrum
from ..pipeline.router import Router, Subscription
from .codec import StreamMeta, spectrum_payload
from .link import NatsLink, link_metrics
from .naming import meta_subject, spectra_subject

# Spectra waiting for the publishing task: at real time it takes each one as it comes; this
# covers a stall of ~0.4 s at 172 spectra/s before the oldest are dropped.
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
        with router.subscribe("nats", QUEUE, latest_wins=True) as subscription:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.link.run)
                task_status.started()
                publish, subject = self.link.publish, self.subject
                while True:
                    spectra = await next_batch(subscription)
                    publish(subject, [spectrum_payload(spectrum) for spectrum in spectra])

    def metrics(self) -> list[m.Metric]:
        return link_metrics(self.link)


async def next_batch(subscription: Subscription) -> Sequence[Spectrum]:
    """Every spectrum waiting, oldest first (at least one)."""
    receive = subscription.receive
    batch = [await receive.receive()]
    while True:
        try:
            batch.append(receive.receive_nowait())
        except trio.WouldBlock:
            return batch
