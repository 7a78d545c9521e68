"""The encoder's compiled loops against the numpy they replaced, and encode's shape checks."""

from __future__ import annotations

import numpy as np
import pytest

from ipwarmup.encoding import shift_history
from ipwarmup.observation import GLOBAL_FEATURES, Telemetry, encode

N_PROVIDERS = 2
WIDTH = 9 * N_PROVIDERS


def _telemetry(n_rows: int, rng: np.random.Generator) -> Telemetry:
    per_env = {"n_ips", "mean_ip_age_days", "day", "weekday", "hour"}
    fields = Telemetry.__dataclass_fields__
    values = {
        name: rng.integers(0, 7, n_rows).astype(float)
        if name in per_env
        else rng.uniform(0.0, 500.0, (n_rows, N_PROVIDERS))
        for name in fields
    }
    return Telemetry(**values)


@pytest.mark.parametrize("periods", [1, 3])
def test_shift_history_is_numpys_shift(periods: int) -> None:
    rng = np.random.default_rng(periods)
    history = rng.uniform(0.0, 1.0, (2, periods, WIDTH)).astype(np.float32)
    last = rng.uniform(0.0, 1.0, (2, WIDTH + 9)).astype(np.float32)
    expected = history.copy()
    expected[:, 1:] = expected[:, :-1]
    expected[:, 0] = last[:, :WIDTH]
    shift_history(history, last)
    np.testing.assert_array_equal(history, expected)
    assert history[0, 0, 0] == last[0, 0]  # the newest is the observation acted on
    if periods > 1:
        assert not np.array_equal(history[:, 1], history[:, 0])  # the rest moved, not copied


def test_one_mta_row_as_a_vector_or_a_list_reads_as_for_every_row() -> None:
    telemetry = _telemetry(3, np.random.default_rng(5))
    row = np.array([1.0, 0.25, 0.5], dtype=np.float32)
    want = encode(telemetry, horizon_days=45, max_ips=8, mta=row[None, :])
    for mta in (row, row.tolist()):
        got = encode(telemetry, horizon_days=45, max_ips=8, mta=mta)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want[:, -3:], np.broadcast_to(row, (3, 3)))


@pytest.mark.parametrize("mta_rows", [1, 3])
def test_mta_and_history_columns_are_copied_after_the_period(mta_rows: int) -> None:
    rng = np.random.default_rng(mta_rows)
    telemetry = _telemetry(3, rng)
    mta = rng.uniform(0.0, 1.0, (mta_rows, 3)).astype(np.float32)
    history = rng.uniform(0.0, 1.0, (3, 2, WIDTH)).astype(np.float32)
    plain = encode(telemetry, horizon_days=45, max_ips=8)
    full = encode(telemetry, horizon_days=45, max_ips=8, mta=mta, history=history)
    g = WIDTH + len(GLOBAL_FEATURES)
    assert full.shape == (3, g + 3 + 2 * WIDTH) and full.dtype == np.float32
    np.testing.assert_array_equal(full[:, :g], plain)
    np.testing.assert_array_equal(full[:, g : g + 3], np.broadcast_to(mta, (3, 3)))
    np.testing.assert_array_equal(full[:, g + 3 :], history.reshape(3, -1))
    only_history = encode(telemetry, horizon_days=45, max_ips=8, history=history)
    np.testing.assert_array_equal(only_history[:, g:], history.reshape(3, -1))


@pytest.mark.parametrize(
    ("mta_shape", "history_shape", "message"),
    [
        ((2, 3), None, r"mta: expected shape \(3,\), \(1, 3\) or \(3, 3\), got \(2, 3\)"),
        ((3, 4), None, r"mta: expected shape \(3,\), \(1, 3\) or \(3, 3\), got \(3, 4\)"),
        ((4,), None, r"mta: expected shape .* got \(4,\)"),
        (None, (2, 1, WIDTH), rf"history: expected shape \(3, K, {WIDTH}\), got \(2, 1, {WIDTH}\)"),
        (None, (3, 1, WIDTH - 9), rf"history: expected shape \(3, K, {WIDTH}\), got"),
        (None, (3, WIDTH), rf"history: expected shape \(3, K, {WIDTH}\), got \(3, {WIDTH}\)"),
    ],
)
def test_a_misshaped_mta_or_history_is_refused_by_name(
    mta_shape: tuple[int, ...] | None, history_shape: tuple[int, ...] | None, message: str
) -> None:
    telemetry = _telemetry(3, np.random.default_rng(0))
    mta = None if mta_shape is None else np.zeros(mta_shape, dtype=np.float32)
    history = None if history_shape is None else np.zeros(history_shape, dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        encode(telemetry, horizon_days=45, max_ips=8, mta=mta, history=history)
