"""The engine: one worker thread drives the Scheduler, so torch work never runs on the event loop.

Requests are submitted with a sink (called from the worker thread with each Step) and join the batch at the
next tick; finished and cancelled ones leave between ticks. `ticks` counts forward passes, which tests use
instead of wall-clock time.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from airquill.server.models.base import ModelAdapter
from airquill.server.sampling.drivers import DenoiseState, Scheduler
from airquill.shared.step import Step

log = logging.getLogger("airquill.engine")

Sink = Callable[[Step], None]


class Overloaded(RuntimeError):
    """The engine holds as many live requests as it may."""


@dataclass
class Engine:
    adapter: ModelAdapter
    max_batch: int = 64
    max_live: int = 256
    scheduler: Scheduler = field(init=False)
    _sinks: dict[int, Sink] = field(default_factory=dict, init=False)
    _incoming: list[tuple[DenoiseState, Sink]] = field(default_factory=list, init=False)
    _wake: threading.Condition = field(default_factory=threading.Condition, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _stopping: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.adapter, max_batch=self.max_batch)

    @property
    def ticks(self) -> int:
        return self.scheduler.ticks

    @property
    def live(self) -> int:
        with self._wake:
            return len(self._sinks) + len(self._incoming)

    def start(self) -> Engine:
        self._thread = threading.Thread(target=self._run, name="airquill-engine", daemon=True)
        self._thread.start()
        return self

    def submit(self, state: DenoiseState, sink: Sink) -> None:
        with self._wake:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if len(self._sinks) + len(self._incoming) >= self.max_live:
                raise Overloaded(f"the server is busy: {self.max_live} requests in flight")
            self._incoming.append((state, sink))
            self._wake.notify()

    def cancel(self, state: DenoiseState) -> None:
        """Ask a request to stop; it finishes (with a final step) at the next tick."""
        with self._wake:
            state.cancel()
            self._wake.notify()

    def stop(self, *, cancel: bool = True) -> None:
        with self._wake:
            self._stopping = True
            if cancel:
                for state in [*self.scheduler.live, *(s for s, _ in self._incoming)]:
                    state.cancel()
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._incoming and self.scheduler.idle and not self._stopping:
                    self._wake.wait()
                for state, sink in self._incoming:
                    self.scheduler.submit(state)
                    self._sinks[id(state)] = sink
                self._incoming.clear()
                if self._stopping and self.scheduler.idle:
                    return
            try:
                results = self.scheduler.tick()
            except Exception:  # a model failure must not kill the server: fail the batch's requests
                log.exception("forward pass failed; cancelling the batch")
                with self._wake:
                    for state in self.scheduler.live:
                        state.cancel()
                continue
            for state, step in results:
                sink = self._sinks.pop(id(state)) if step.is_final else self._sinks.get(id(state))
                if sink is None:
                    continue
                try:
                    sink(step)
                except Exception:  # a client's relay that is gone must not stop the others
                    log.exception("could not deliver a step; cancelling that request")
                    state.cancel()
