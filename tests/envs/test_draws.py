"""Compiled draws from each row's generator are numpy's draws (envs/draws.py).

The simulator's random stream must not move: every trajectory, the goldens and the shipped
policy's figures depend on it. numba runs numpy's algorithms on the generator's own bit
generator; these tests hold :func:`draw_days` to the numpy calls the simulator made before
(``random(out=...)`` then ``standard_normal(out=...)`` per row), value for value and
state for state, over enough normals to pass through the ziggurat's rare paths.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.envs.draws import RowGenerators, copy_generator, draw_days

BIT_GENERATORS = (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox,
                  np.random.SFC64)  # fmt: skip
# The ziggurat's last layer starts here: a normal this far out came from its tail path.
ZIGGURAT_TAIL = 3.6541528853610088


def _numpy_days(
    generators: list[np.random.Generator], rows: np.ndarray, uniforms: np.ndarray,
    normals: np.ndarray,
) -> None:  # fmt: skip
    """The old path: two numpy calls per row, straight into its rows of the arrays."""
    for r, i in enumerate(rows):
        generators[i].random(out=uniforms[r])
        generators[i].standard_normal(out=normals[r])


def _states(generators: list[np.random.Generator]) -> list[list[int]]:
    """Return each generator's next raw words: equal only if their states are (it draws)."""
    return [g.bit_generator.random_raw(16).tolist() for g in generators]


@pytest.mark.parametrize("bit_generator", BIT_GENERATORS, ids=lambda b: b.__name__)
def test_a_day_of_every_row_is_numpys_draws_and_leaves_numpys_state(bit_generator: type) -> None:
    seeds = range(40, 46)
    ours = [np.random.Generator(bit_generator(s)) for s in seeds]
    theirs = [np.random.Generator(bit_generator(s)) for s in seeds]
    rows = np.arange(len(ours))
    batch = RowGenerators(ours)
    shape = (len(rows), 2, 24, 5)
    for _day in range(30):
        u1, n1 = np.empty((len(rows), 9)), np.empty(shape)
        u2, n2 = np.full((len(rows), 9), np.nan), np.full(shape, np.nan)
        _numpy_days(theirs, rows, u1, n1)
        draw_days(batch.typed, rows, u2, n2)
        assert np.array_equal(u1, u2) and np.array_equal(n1, n2)
    assert _states(ours) == _states(theirs)


def test_millions_of_normals_match_numpy_through_the_ziggurats_rare_paths() -> None:
    # 2**21 normals: ~1% take the wedge test (a second draw and an exp), a few hundred the
    # tail (log1p of two more draws); a path that drew differently would shift every
    # later value.
    ours, theirs = np.random.default_rng(2024), np.random.default_rng(2024)
    n = np.empty((1, 2**21))
    u = np.empty((1, 3))
    draw_days(RowGenerators([ours]).typed, np.array([0]), u, n)
    expected_u, expected_n = theirs.random(3), theirs.standard_normal(2**21)
    assert np.array_equal(u[0], expected_u) and np.array_equal(n[0], expected_n)
    tail = int(np.count_nonzero(np.abs(n) > ZIGGURAT_TAIL))
    assert 200 < tail < 1000  # 2**21 * P(|z| > 3.654) = ~540
    assert _states([ours]) == _states([theirs])


def test_rows_draw_in_the_given_order_from_their_own_generators_and_others_are_untouched() -> None:
    ours = [seeding.np_random(s)[0] for s in range(4)]
    theirs = [seeding.np_random(s)[0] for s in range(4)]
    batch = RowGenerators(ours)
    rows = np.array([2, 0])
    u1, n1, u2, n2 = (
        np.empty((2, 9)),
        np.empty((2, 2, 24, 3)),
        np.empty((2, 9)),
        np.empty((2, 2, 24, 3)),
    )
    _numpy_days(theirs, rows, u1, n1)
    draw_days(batch.typed, rows, u2, n2)
    assert np.array_equal(u1, u2) and np.array_equal(n1, n2)
    untouched = [seeding.np_random(s)[0] for s in (1, 3)]
    assert _states([ours[1], ours[3]]) == _states(untouched)
    assert _states([ours[0], ours[2]]) == _states([theirs[0], theirs[2]])
    assert not np.array_equal(u2[0], u2[1])  # two generators, two streams


def test_numpy_and_compiled_draws_advance_one_shared_state() -> None:
    ours, theirs = np.random.default_rng(5), np.random.default_rng(5)
    batch = RowGenerators([ours])
    u, n = np.empty((1, 4)), np.empty((1, 7))
    draw_days(batch.typed, np.array([0]), u, n)
    first = ours.random(3)  # numpy goes on where the compiled draws stopped
    draw_days(batch.typed, np.array([0]), u, n)
    expected = theirs.random(4), theirs.standard_normal(7), theirs.random(3)
    expected_again = theirs.random(4), theirs.standard_normal(7)
    assert np.array_equal(first, expected[2])
    assert np.array_equal(u[0], expected_again[0]) and np.array_equal(n[0], expected_again[1])


def test_a_row_given_another_generator_draws_from_it_and_the_same_one_is_kept() -> None:
    placeholder = np.random.default_rng(0)
    batch = RowGenerators.repeat(placeholder, 3)
    assert len(batch) == 3 and all(g is placeholder for g in batch)
    fresh = np.random.default_rng(11)
    batch[1] = fresh
    assert batch[1] is fresh and batch[0] is placeholder
    typed_before = batch.typed
    batch[1] = fresh  # the same object: nothing to hand numba again
    assert batch.typed is typed_before
    u, n = np.empty((1, 2)), np.empty((1, 3))
    draw_days(batch.typed, np.array([1]), u, n)
    reference = np.random.default_rng(11)
    assert np.array_equal(u[0], reference.random(2))
    assert np.array_equal(n[0], reference.standard_normal(3))
    assert _states([placeholder]) == _states([np.random.default_rng(0)])


def test_no_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="generators: expected at least one row, got none"):
        RowGenerators([])


def test_copies_draw_what_their_rows_would_draw_next_and_leave_the_rows_alone() -> None:
    originals = [seeding.np_random(s)[0] for s in range(5)]
    for g in originals:
        g.random(3)  # mid-stream, not at the seed's start
    twins = [seeding.np_random(s)[0] for s in range(5)]
    for g in twins:
        g.random(3)
    batch = RowGenerators(originals)
    rows = np.array([3, 1, 4])
    copies = batch.copies(rows)
    assert len(copies) == 3 and all(c is not o for c in copies for o in originals)
    u, n = np.empty((3, 9)), np.empty((3, 2, 24, 5))
    draw_days(copies.typed, np.arange(3), u, n)
    u_expected, n_expected = np.empty((3, 9)), np.empty((3, 2, 24, 5))
    _numpy_days(twins, rows, u_expected, n_expected)
    assert np.array_equal(u, u_expected) and np.array_equal(n, n_expected)
    untouched = [seeding.np_random(s)[0] for s in range(5)]
    for g in untouched:
        g.random(3)
    assert _states(originals) == _states(untouched)


def test_copies_are_set_again_at_each_call_and_follow_another_kind_of_bit_generator() -> None:
    originals = [np.random.default_rng(1), np.random.Generator(np.random.MT19937(2))]
    batch = RowGenerators(originals)
    first = batch.copies(np.array([0, 1]))
    first[0].random(10)  # the copies move on; the next call starts them afresh
    first[1].random(10)
    again = batch.copies(np.array([1, 0]))  # the same scratch, each slot of the other kind
    assert again.typed is first.typed
    assert type(again[0].bit_generator) is np.random.MT19937
    assert type(again[1].bit_generator) is np.random.PCG64
    u, n = np.empty((2, 2)), np.empty((2, 3))
    draw_days(again.typed, np.arange(2), u, n)
    mt, pcg = np.random.Generator(np.random.MT19937(2)), np.random.default_rng(1)
    assert np.array_equal(u[0], mt.random(2)) and np.array_equal(n[0], mt.standard_normal(3))
    assert np.array_equal(u[1], pcg.random(2)) and np.array_equal(n[1], pcg.standard_normal(3))


def test_copies_of_the_same_rows_start_again_from_the_rows_states() -> None:
    originals = [np.random.default_rng(s) for s in (3, 4)]
    batch = RowGenerators(originals)
    rows = np.array([0, 1])
    u1, n1, u2, n2 = np.empty((2, 5)), np.empty((2, 6)), np.empty((2, 5)), np.empty((2, 6))
    draw_days(batch.copies(rows).typed, rows, u1, n1)
    draw_days(batch.copies(rows).typed, rows, u2, n2)  # the scratch again, set again
    assert np.array_equal(u1, u2) and np.array_equal(n1, n2)
    originals[0].random(2)  # a row moves on: its next copy follows it
    draw_days(batch.copies(rows).typed, rows, u2, n2)
    reference = np.random.default_rng(3)
    reference.random(2)
    assert np.array_equal(u2[0], reference.random(5)) and np.array_equal(u2[1], u1[1])
    # A simulator's continuation copies the rows of a copy (a replicated simulator's).
    nested = batch.copies(rows).copies(np.array([1]))
    assert len(nested) == 1


def test_copy_generator_draws_what_the_original_draws_and_moves_on_alone() -> None:
    original = np.random.Generator(np.random.Philox(8))
    original.standard_normal(5)
    copy = copy_generator(original)
    assert type(copy.bit_generator) is np.random.Philox and copy is not original
    assert np.array_equal(copy.standard_normal(7), original.standard_normal(7))
    copy.random(3)
    assert not np.array_equal(copy.random(4), original.random(4))
