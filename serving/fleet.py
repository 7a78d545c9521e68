"""A fleet's records into observations without pydantic, for ``ServedPolicy.decide_batch``.

Validating a version-2 record with pydantic took ~60 µs, six times the rest of its
decision in a batch, so a fleet's records take the one-record path's fast check
(:meth:`OneRecord._gather <ipwarmup.serving.single.OneRecord._gather>`, then the compiled
bounds and consistency check) and are encoded by the same compiled encoder
(:func:`ipwarmup.serving.kernel.encode_rows`), whose observation is
:func:`ipwarmup.observation.encode`'s bit for bit. The network and the guardrails then run
on the whole batch in numpy, as before, so a batch's decisions are exactly those of the
pydantic path (``tests/serving/test_fast_path.py``). A record the fast check refuses is
validated by pydantic, which names its problems or returns it normalised (plain ``int``
and ``float``), and the normalised record takes the fast path.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator

import numpy as np

from ipwarmup.serving import jsonrows, kernel, kernel_record
from ipwarmup.serving.single import OneRecord


class Fleet:
    """Pack and encode a batch of records for one policy.

    Args:
        one: the policy's one-record path (its constants, layout and fast check).
        obs_dim: the observation's size.
    """

    def __init__(self, one: OneRecord, *, obs_dim: int) -> None:
        self._one = one
        self._obs_dim = obs_dim
        p = len(one.providers)
        self._p = p
        # The first 10P + 7 values of every record: its counts, pool, time, version, period.
        head = 10 * p + 7
        self._head = np.arange(head)
        # Compile (or load) the fleet's kernel now, not on a server's first batch: on a
        # record of zeros, which the encoder takes whatever its meaning.
        k = one.layout.history_periods
        width = 10 * p * (1 + k) + 11 if one.layout.needs_v2 else head
        self.encode([(np.zeros(width), np.ones(one._n_logs))])
        self._names = jsonrows.key_table(one.providers)
        if self.read_body(json.dumps([one.zeros_record(2)]).encode(), 1) is None:
            raise AssertionError("the body reader refused a record of zeros")

    def row(self, record: object) -> tuple[np.ndarray, np.ndarray] | None:
        """Return a record's values in the kernel's order and its log10 inputs, or None.

        None when the fast check refuses the record: its shape is off
        (:meth:`OneRecord._gather`), a number is not an exact ``int`` or ``float`` or does
        not fit a float (``kernel_record.read``), or a value is out of bounds or a provider's
        counts inconsistent (``kernel_record.check``).
        """
        one = self._one
        try:
            flat = one._gather(record)
        except KeyError:
            return None
        data = None if flat is None else one._pickled(flat)
        if flat is None or data is None:
            return None
        layout = one._layout_v2 if len(flat) > 10 * self._p + 7 else one._layout
        values, logs = np.empty(len(flat)), np.empty(one._n_logs)
        ready = kernel_record.prepare(data, values, one._consts, layout, logs)
        return (values, logs) if ready else None

    def encode(
        self, rows: list[tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encode checked records (:meth:`row`'s); return (counts, ips, obs).

        ``counts`` (B, P, 10) as :func:`ipwarmup.serving.telemetry.record_arrays` gives
        them, ``ips`` (B,) each record's dedicated IPs, ``obs`` (B, D) the observations.
        """
        values = np.concatenate([row[0] for row in rows])
        starts = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([row[0].size for row in rows], out=starts[1:])
        return self._encoded(values, starts, np.stack([row[1] for row in rows]))

    def read_body(
        self, body: bytes, max_records: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Read and encode a JSON array of records from its bytes; return (counts, ips, obs).

        :func:`ipwarmup.serving.jsonrows.read_batch` reads the numbers without a Python
        object each, then ``kernel_record.prepare_rows`` runs the fast check on every record. None
        when either refuses anything (or the array is empty or longer than
        ``max_records``): the caller parses the body and takes :meth:`row`'s way, which
        decides the same records alike and words the problems of the others.
        """
        one = self._one
        data = np.frombuffer(body, dtype=np.uint8)
        n, values, starts = jsonrows.read_batch(data, *self._names, one._history,
                                                one._accepts_v1, max_records)  # fmt: skip
        if n < 0:
            return None
        logs = np.empty((n, one._n_logs))
        if not kernel_record.prepare_rows(values, starts, one._consts, one._layout, one._layout_v2,
                                   logs):  # fmt: skip
            return None
        return self._encoded(values, starts, logs)

    def _encoded(
        self, values: np.ndarray, starts: np.ndarray, logs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encode checked records (``values[starts[r] : starts[r + 1]]``, log10 inputs (B, L))."""
        n = starts.size - 1
        # numpy's log10, as encode's (serving.single says why not libm's).
        np.log10(logs, out=logs)
        obs = np.empty((n, self._obs_dim), dtype=np.float32)
        kernel.encode_rows(values, starts, logs, self._one._consts, obs)
        head = values[starts[:-1, None] + self._head]
        counts = head[:, : 10 * self._p].reshape(n, self._p, 10)
        return counts, head[:, 10 * self._p], obs


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a fleet's batch, then restore it as it was.

    A batch allocates ~25 containers per record (validated records, decisions), acyclic
    and freed by reference counting. With the collector on, its passes over them, and the
    full collections of the caller's whole heap that their promotion triggers, took as
    long as the deciding (a model server with torch loaded: 1.1 s of GC in 15 batches of
    1,000). Paused, nothing is promoted and nothing leaks: no cycle is made here.
    Thread-safe in effect: the collector is re-enabled by whoever disabled it.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
