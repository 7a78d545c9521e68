"""Each row's generator, drawn from in compiled code: a day's draws of every row in one call.

Every row of a batch draws from its own ``numpy.random.Generator`` (a batch equals single
envs seeded alike). At midnight each row drew the next day with two numpy calls, ~2.3 µs
each with the call's overhead, and numpy's normals cost ~12 ns each: ~1.2 ms a day at 256
rows, more than the compiled day itself. numba compiles numpy ``Generator`` objects: in
nopython code ``g.random()`` and ``g.standard_normal()`` call the generator's bit generator
through the function pointers of its ctypes interface and run numpy's algorithms (the
256-step ziggurat of ``random_standard_normal``, ported by numba with numpy's tables), so
they draw numpy's numbers, bit for bit, and leave the generator in numpy's state
(``tests/envs/test_draws.py`` holds them to numpy on millions of draws, the ziggurat's
wedges and tail included). :func:`draw_days` draws a day of every row in one call, ~0.26
ms at 256 rows.

Handing numba one generator costs ~10 µs (it looks up the ctypes interface and casts three
function pointers), so the rows' generators live in one numba typed ``List``
(:class:`RowGenerators`), which a call receives whole; a row's item is replaced only when
the row gets another generator object, not when an episode restarts on the same one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numba
import numpy as np
from numba import typed

from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.sender import N_DAILY_UNIFORMS


def _repeat(generator: np.random.Generator, count: int) -> Any:
    """Return a typed List holding ``generator`` ``count`` times (one unboxing, not N)."""
    out = typed.List()
    for _ in range(count):
        out.append(generator)
    return out


_repeat_compiled: Callable[[np.random.Generator, int], Any] = numba.njit(cache=True)(_repeat)


def copy_generator(generator: np.random.Generator) -> np.random.Generator:
    """Return an independent generator in the same state (a third of copy.deepcopy's cost).

    The copy's bit generator has the original's state, so it draws the same numbers; it
    does not share the original's seed sequence (nothing here spawns from it).
    """
    bit_generator = type(generator.bit_generator)(0)
    bit_generator.state = generator.bit_generator.state
    return np.random.Generator(bit_generator)


class RowGenerators:
    """The generator of each row, as a Python list and as the typed List compiled draws read.

    Args:
        generators: one generator per row.
    """

    def __init__(self, generators: Sequence[np.random.Generator]) -> None:
        self._list = list(generators)
        if not self._list:
            raise ValueError("generators: expected at least one row, got none")
        first = self._list[0]
        if all(g is first for g in self._list):
            self._typed = _repeat_compiled(first, len(self._list))
        else:
            self._typed = typed.List(self._list)
        self._scratch: RowGenerators | None = None  # what copies() hands out, reused
        self._distinct: bool | None = None  # whether no two rows share a bit generator

    def copies(self, rows: np.ndarray) -> RowGenerators:
        """Return generators in the states of rows ``rows``' generators, which they leave alone.

        Row ``j`` of the result draws what ``self[rows[j]]`` would draw next. The copies are
        scratch generators this object keeps: each call sets their states again (~2 µs a
        row, where a new generator and handing it to numba cost ~25 µs), so a result is
        valid until the next call. Its typed List may hold more generators than its rows
        (compiled draws read only the rows they are given).
        """
        sources = [self._list[i] for i in rows]
        scratch = self._scratch
        if scratch is None or len(scratch) < len(sources):
            scratch = self._scratch = RowGenerators([copy_generator(g) for g in sources])
        for j, source in enumerate(sources):
            target = scratch._list[j]
            if type(target.bit_generator) is not type(source.bit_generator):
                scratch[j] = copy_generator(source)  # another kind of bit generator
            else:
                target.bit_generator.state = source.bit_generator.state
        view = RowGenerators.__new__(RowGenerators)
        view._list = scratch._list[: len(sources)]
        view._typed = scratch._typed
        view._scratch = None
        view._distinct = None
        return view

    @classmethod
    def repeat(cls, generator: np.random.Generator, count: int) -> RowGenerators:
        """Return ``count`` rows that all hold ``generator`` (placeholders before a reset)."""
        return cls([generator] * count)

    @property
    def distinct(self) -> bool:
        """Whether every row draws from a bit generator of its own (rows may draw at once)."""
        if self._distinct is None:
            seen = {id(g.bit_generator) for g in self._list}
            self._distinct = len(seen) == len(self._list)
        return self._distinct

    @property
    def typed(self) -> Any:
        """The numba typed List of the rows' generators, for compiled code to draw from."""
        return self._typed

    def __getitem__(self, row: int) -> np.random.Generator:
        return self._list[row]

    def __setitem__(self, row: int, generator: np.random.Generator) -> None:
        if self._list[row] is not generator:  # ~10 µs to hand numba a new one
            self._list[row] = generator
            self._typed[row] = generator
            self._distinct = None

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[np.random.Generator]:
        return iter(self._list)


def day_arrays(n_rows: int, n_providers: int) -> tuple[np.ndarray, np.ndarray]:
    """Return arrays for :func:`draw_days` to fill: a day's uniforms and normals of rows."""
    uniforms = np.empty((n_rows, N_DAILY_UNIFORMS))
    return uniforms, np.empty((n_rows, 2, HOURS_PER_DAY, n_providers))


def _draw_days(
    generators: Any, rows: np.ndarray, uniforms: np.ndarray, normals: np.ndarray
) -> None:
    """Draw the next day of rows ``rows``: each row's uniforms, then its normals.

    Row ``r`` draws from ``generators[rows[r]]`` exactly what
    ``g.random(out=uniforms[r])`` then ``g.standard_normal(out=normals[r])`` draw, in
    that order and in the arrays' C order.

    Args:
        generators: the rows' generators (:attr:`RowGenerators.typed`).
        rows: (R,) row indices.
        uniforms: (R, U) written.
        normals: (R, ...) written, C-contiguous.
    """
    n_uniforms = uniforms.shape[1]
    for r in range(rows.shape[0]):
        generator = generators[rows[r]]
        for i in range(n_uniforms):
            uniforms[r, i] = generator.random()
        flat = normals[r].reshape(-1)
        for i in range(flat.shape[0]):
            flat[i] = generator.standard_normal()


draw_days: Callable[..., None] = numba.njit(cache=True)(_draw_days)
"""The compiled :func:`_draw_days`."""
