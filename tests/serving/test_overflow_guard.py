"""A network that can overflow decides like any other: no warning, the fallback decides.

``load_policy`` bounds every layer's output over the encoder's observation ranges; only a
network proven finite skips ``np.errstate`` in ``decide``. Each network here overflows on
the record given, in a different part of that bound (the normalisation's worst side, its
scale, a relu layer, a bias after tanh, a mean outside a feature's range), so a bound that
is too small in any part shows as a RuntimeWarning, an error in these tests.
"""

from __future__ import annotations

import copy
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.serving import load_policy
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.telemetry import encode_record
from ipwarmup.training.export import write_bundle
from tests.serving.shipped import default_bundle

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = default_bundle()
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
GMAIL_DEMAND, WEEKDAY_SIN = 0, 48  # feature indices (models/last-period/manifest.json)
BIGGEST = sys.float_info.max


def _network(
    tmp_path: Path,
    activations: tuple[str, str, str],
    weights: Callable[[dict[str, np.ndarray]], None],
    *,
    mean: dict[int, float] | None = None,
    var: dict[int, float] | None = None,
) -> ServedPolicy:
    """The shipped layout with zero weights but ``weights``' entries; mean 0, variance 1."""
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    with np.load(DEFAULT / "weights.npz") as archive:
        arrays = {name: np.zeros_like(archive[name], dtype=np.float64) for name in archive.files}
    weights(arrays)
    n_obs = len(manifest["normalization"]["mean"])
    means, variances = [0.0] * n_obs, [1.0] * n_obs
    for i, value in (mean or {}).items():
        means[i] = value
    for i, value in (var or {}).items():
        variances[i] = value
    manifest["normalization"].update(mean=means, var=variances, epsilon=0.0, clip_obs=1e9)
    for layer, activation in zip(manifest["network"]["layers"], activations, strict=True):
        layer["activation"] = activation
    name = f"net{len(list(tmp_path.iterdir()))}"
    return load_policy(write_bundle(tmp_path / name, manifest, arrays))


def _record(weekday: int = 0) -> dict[str, Any]:
    record = copy.deepcopy(EXAMPLE)
    record["time"]["weekday"] = weekday
    return record


def _feature(record: dict[str, Any], index: int) -> float:
    return float(encode_record(record, PROVIDERS, horizon_days=45, max_ips=8)[index])


def _falls_back_quietly(policy: ServedPolicy, record: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (overflow) fails the test
        decision = policy.decide(copy.deepcopy(record))
        assert decision == policy.decide_batch([copy.deepcopy(record)])[0]
    assert decision["fallback"] == "the network's output is not finite"
    assert decision["pool"]["reasons"][0].startswith("aimd: ")


def test_a_relu_network_that_overflows_falls_back_quietly(tmp_path: Path) -> None:
    # gmail's demand feature (0.46 here, up to 2) x 1e10 through relu and identity, then
    # x 1e299 into the pool action: 4.6e308 overflows. Only tanh bounds a unit by 1.
    demand = _feature(_record(), GMAIL_DEMAND)
    assert demand * 1e10 * 1e299 > BIGGEST

    def weights(a: dict[str, np.ndarray]) -> None:
        a["layer0.weight"][0, GMAIL_DEMAND] = 1e10
        a["layer1.weight"][0, 0] = 1.0
        a["layer2.weight"][5, 0] = 1e299

    policy = _network(tmp_path, ("relu", "identity", "identity"), weights)
    _falls_back_quietly(policy, _record())


def test_a_bias_after_tanh_that_overflows_falls_back_quietly(tmp_path: Path) -> None:
    # tanh(100 x 0.46) = 1, then 1e308 x 1 + a bias of 1e308: the sum overflows.
    def weights(a: dict[str, np.ndarray]) -> None:
        a["layer0.weight"][0, GMAIL_DEMAND] = 100.0
        a["layer1.weight"][0, 0] = 1e308
        a["layer1.bias"][0] = 1e308
        a["layer2.weight"][5, 0] = 1.0

    policy = _network(tmp_path, ("tanh", "identity", "identity"), weights)
    _falls_back_quietly(policy, _record())


def test_a_narrow_normalisation_that_overflows_falls_back_quietly(tmp_path: Path) -> None:
    # Variance 1e-10: the demand feature is divided by 1e-5 (0.46 -> 4.6e4), then x 1e304.
    demand = _feature(_record(), GMAIL_DEMAND)
    assert demand / 1e-5 * 1e304 > BIGGEST

    def weights(a: dict[str, np.ndarray]) -> None:
        a["layer0.weight"][0, GMAIL_DEMAND] = 1e304
        a["layer1.weight"][0, 0] = 1.0
        a["layer2.weight"][5, 0] = 1.0

    identity = ("identity", "identity", "identity")
    policy = _network(tmp_path, identity, weights, var={GMAIL_DEMAND: 1e-10})
    _falls_back_quietly(policy, _record())


@pytest.mark.parametrize("mean", [1.0, -1.0])
def test_a_mean_at_a_features_edge_that_overflows_falls_back_quietly(
    tmp_path: Path, mean: float
) -> None:
    # The weekday's sine lies in [-1, 1]; with a mean of +1 (or -1) the normalised value
    # reaches 2 in magnitude on the other side. The weekday furthest from the mean gives
    # |sin - mean| > 1.06, and x 1.7e308 overflows.
    weekday = max(range(7), key=lambda d: abs(_feature(_record(d), WEEKDAY_SIN) - mean))
    assert abs(_feature(_record(weekday), WEEKDAY_SIN) - mean) * 1.7e308 > BIGGEST

    def weights(a: dict[str, np.ndarray]) -> None:
        a["layer0.weight"][0, WEEKDAY_SIN] = 1.7e308
        a["layer1.weight"][0, 0] = 1.0
        a["layer2.weight"][5, 0] = 1.0

    identity = ("identity", "identity", "identity")
    policy = _network(tmp_path, identity, weights, mean={WEEKDAY_SIN: mean})
    _falls_back_quietly(policy, _record(weekday))
