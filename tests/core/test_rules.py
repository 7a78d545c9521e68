"""The AIMD rule on plain observation views: inputs -> target caps and pool growth."""

import numpy as np
import pytest

from ipwarmup.observation import ObservationView
from ipwarmup.rules import aimd, per_ip, shares

CEILING = 500_000 / 24  # per-IP hourly cap at which the pool grows (500k a day)


def _view(n=1, **per_provider):
    """Three providers, demand 600/300/100 per hour, pool cap 900/300/60, 2 IPs."""
    base = {
        "demand_per_hour": [600.0, 300.0, 100.0],
        "cap_per_hour": [900.0, 300.0, 60.0],
        "deferral_rate": [0.0, 0.0, 0.0],
        "reject_rate": [0.0, 0.0, 0.0],
        "complaint_rate": [0.0, 0.0, 0.0],
        "bounce_rate": [0.0, 0.0, 0.0],
        "sent_share": [1.0, 1.0, 1.0],
    }
    base.update(per_provider)
    arrays = {k: np.tile(np.asarray(v, dtype=float), (n, 1)) for k, v in base.items()}
    return ObservationView(**arrays, n_ips=np.full(n, 2.0), day=np.zeros(n))


def test_shares_and_per_ip_split():
    view = _view()
    np.testing.assert_allclose(shares(view.demand_per_hour), [[0.6, 0.3, 0.1]])
    np.testing.assert_allclose(per_ip(view.cap_per_hour, view.n_ips), [[450.0, 150.0, 30.0]])
    # An empty pool divides by one, not zero; no demand gives no shares.
    np.testing.assert_allclose(per_ip(np.array([[80.0]]), np.array([0.0])), [[80.0]])
    np.testing.assert_allclose(shares(np.zeros((1, 2))), [[0.0, 0.0]])


def test_additive_increase_where_demand_exceeded_the_cap_split_by_the_mix():
    # Per IP: 450/150/30. Gmail and yahoo were binding (sent < 98% of demand): +100 an hour
    # split 60/30/10 by the demand mix -> gmail +60, yahoo +10; microsoft sent everything.
    view = _view(sent_share=[0.5, 1.0, 0.6])
    target, grow = aimd(view, increase_per_hour=100.0, per_ip_ceiling=CEILING)
    np.testing.assert_allclose(target, [[510.0, 150.0, 40.0]])
    assert not grow[0]


def test_binding_starts_below_98_percent_sent():
    view = _view(sent_share=[0.98, 0.9799, 1.0])
    target, _ = aimd(view, increase_per_hour=100.0, per_ip_ceiling=CEILING)
    np.testing.assert_allclose(target, [[450.0, 180.0, 30.0]])


@pytest.mark.parametrize(
    ("signal", "limit"),
    [("deferral_rate", 0.05), ("complaint_rate", 0.001), ("bounce_rate", 0.05)],
)
def test_each_limit_cuts_by_one_and_a_half_just_above_it_not_at_it(signal, limit):
    above = [limit * 1.01, limit, 0.0]  # gmail above the limit, microsoft exactly at it
    view = _view(sent_share=[0.5, 0.5, 0.5], **{signal: above})
    target, grow = aimd(view, increase_per_hour=100.0, per_ip_ceiling=CEILING)
    # gmail 450 / 1.5 = 300; microsoft at the limit still grows: 150 + 30; yahoo 30 + 10.
    np.testing.assert_allclose(target, [[300.0, 180.0, 40.0]])
    assert not grow[0]


def test_any_rejection_pauses_the_provider_whatever_else_happened():
    view = _view(
        sent_share=[0.5, 0.5, 0.5],
        reject_rate=[1e-6, 0.0, 0.0],
        deferral_rate=[0.5, 0.0, 0.0],
    )
    target, _ = aimd(view, increase_per_hour=100.0, per_ip_ceiling=CEILING)
    np.testing.assert_allclose(target, [[0.0, 180.0, 40.0]])


def _at_ceiling(total_per_ip, **kw):
    # Per IP caps summing to `total_per_ip` over providers (two IPs in the pool).
    caps = np.array([0.5, 0.3, 0.2]) * total_per_ip * 2
    return _view(cap_per_hour=list(caps), **kw)


def test_pool_grows_at_the_per_ip_ceiling_when_demand_still_exceeds_it():
    binding = {"sent_share": [0.9, 1.0, 1.0]}
    _, grow = aimd(_at_ceiling(CEILING, **binding), increase_per_hour=1.0, per_ip_ceiling=CEILING)
    assert grow[0]
    _, grow = aimd(
        _at_ceiling(CEILING * 0.999, **binding), increase_per_hour=1.0, per_ip_ceiling=CEILING
    )
    assert not grow[0]  # just below the ceiling: raise caps, keep the pool


def test_pool_does_not_grow_at_the_ceiling_without_demand_or_under_congestion():
    _, grow = aimd(_at_ceiling(CEILING * 2), increase_per_hour=1.0, per_ip_ceiling=CEILING)
    assert not grow[0]  # everything was sent: no need for another IP
    congested = {"sent_share": [0.9, 1.0, 1.0], "deferral_rate": [0.0, 0.0, 0.2]}
    _, grow = aimd(
        _at_ceiling(CEILING * 2, **congested), increase_per_hour=1.0, per_ip_ceiling=CEILING
    )
    assert not grow[0]  # a provider defers: do not add a cold IP now


def test_an_empty_pool_always_asks_for_an_ip():
    view = _view(n=2)
    view.n_ips[:] = [0.0, 1.0]
    _, grow = aimd(view, increase_per_hour=1.0, per_ip_ceiling=CEILING)
    assert list(grow) == [True, False]


def test_shares_are_per_row_and_exact_below_one_message_an_hour():
    demand = np.array([[0.2, 0.3], [30.0, 10.0]])
    np.testing.assert_allclose(shares(demand), [[0.4, 0.6], [0.75, 0.25]], rtol=1e-12)


def test_the_pool_decision_is_per_row_of_a_batch():
    # Row 0 at the ceiling and binding; row 1 at the ceiling with everything sent; row 2
    # binding, at the ceiling, with a congested provider; row 3 binding below the ceiling.
    rows = [
        (CEILING, [0.9, 1.0, 1.0], [0.0, 0.0, 0.0], True),
        (CEILING, [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], False),
        (CEILING, [0.9, 1.0, 1.0], [0.0, 0.2, 0.0], False),
        (CEILING * 0.5, [0.9, 1.0, 1.0], [0.0, 0.0, 0.0], False),
    ]
    view = _view(n=len(rows))
    for i, (total, sent, deferral, _) in enumerate(rows):
        view.cap_per_hour[i] = np.array([0.5, 0.3, 0.2]) * total * 2
        view.sent_share[i] = sent
        view.deferral_rate[i] = deferral
    _, grow = aimd(view, increase_per_hour=1.0, per_ip_ceiling=CEILING)
    assert list(grow) == [expected for *_, expected in rows]
