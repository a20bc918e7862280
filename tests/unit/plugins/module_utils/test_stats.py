# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Mann-Whitney U test against reference values.

The expected numbers were computed with scipy 1.17.1 (not a dependency of this
collection) in a throw-away virtualenv:

* ``scipy.stats.mannwhitneyu(x, y, alternative=alt, method="asymptotic")`` for the
  normal approximation (tie correction and continuity correction are scipy's defaults);
* ``method="exact"`` for samples without ties;
* ``method=scipy.stats.PermutationMethod(n_resamples=numpy.inf)`` (every permutation)
  for the exact distribution with ties, which scipy's ``exact`` method does not handle.
"""

from __future__ import annotations

import math
from typing import List

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.stats import (
    mann_whitney_u,
    median,
    normal_sf,
    rank_with_ties,
    smallest_p_value,
)

CANARY_WORSE = ([0.31, 0.42, 0.27, 0.55, 0.39], [0.12, 0.20, 0.25, 0.18, 0.30])
OVERLAP = ([1.2, 3.4, 2.2, 5.1, 0.7, 2.9], [1.9, 2.5, 0.4, 3.0, 1.1, 2.0, 4.4])
TIES = ([0.0, 0.0, 0.01, 0.02, 0.05], [0.0, 0.0, 0.0, 0.01, 0.0])
LARGE = (
    [0.05, 0.162, 0.296, 0.447, 0.611, 0.786, 0.97, 1.163, 1.363, 1.571, 1.785, 2.005, 2.231, 2.462],
    [0.037, 0.179, 0.333, 0.495, 0.661, 0.831, 1.005, 1.181, 1.36, 1.541, 1.724, 1.909],
)
LARGE_TIES = ([0, 0, 0, 1, 1, 2, 3, 3, 3, 4, 5, 5], [0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 0, 0, 1])

# (x, y, alternative, method, U, p) from scipy, see the module docstring.
REFERENCE = [
    (CANARY_WORSE, "greater", "exact", 24.0, 0.007936507936507936),
    (CANARY_WORSE, "less", "exact", 24.0, 0.996031746031746),
    (CANARY_WORSE, "two-sided", "exact", 24.0, 0.015873015873015872),
    (CANARY_WORSE, "greater", "asymptotic", 24.0, 0.01078587397386046),
    (CANARY_WORSE, "two-sided", "asymptotic", 24.0, 0.02157174794772092),
    (OVERLAP, "greater", "exact", 25.0, 0.3141025641025641),
    (OVERLAP, "less", "exact", 25.0, 0.7331002331002331),
    (OVERLAP, "two-sided", "exact", 25.0, 0.6282051282051282),
    (OVERLAP, "greater", "asymptotic", 25.0, 0.3085375387259869),
    (OVERLAP, "less", "asymptotic", 25.0, 0.7398415997463167),
    (TIES, "greater", "exact", 18.5, 0.14285714285714285),
    (TIES, "less", "exact", 18.5, 0.9761904761904762),
    (TIES, "two-sided", "exact", 18.5, 0.2857142857142857),
    (TIES, "greater", "asymptotic", 18.5, 0.09690785110176481),
    (TIES, "less", "asymptotic", 18.5, 0.9376846264615224),
    (TIES, "two-sided", "asymptotic", 18.5, 0.19381570220352962),
    (LARGE, "greater", "exact", 95.0, 0.2975775805833687),
    (LARGE, "less", "exact", 95.0, 0.7197752052766186),
    (LARGE, "greater", "asymptotic", 95.0, 0.2945772327250291),
    (LARGE, "less", "asymptotic", 95.0, 0.722905991320267),
    (LARGE, "two-sided", "asymptotic", 95.0, 0.5891544654500582),
    (LARGE_TIES, "greater", "asymptotic", 106.0, 0.06231897754192031),
    (LARGE_TIES, "less", "asymptotic", 106.0, 0.9442440216108049),
    (LARGE_TIES, "two-sided", "asymptotic", 106.0, 0.12463795508384062),
    (LARGE_TIES, "greater", "exact", 106.0, 0.060806107339961155),
]


@pytest.mark.parametrize(
    "samples, alternative, method, u, p",
    REFERENCE,
    ids=["%s-%s-%d" % (case[1], case[2], i) for i, case in enumerate(REFERENCE)],
)
def test_matches_scipy(samples: tuple, alternative: str, method: str, u: float, p: float) -> None:
    x, y = samples
    result = mann_whitney_u(x, y, alternative=alternative, method=method)
    assert result.u == u
    assert result.p_value == pytest.approx(p, rel=1e-9, abs=1e-12)
    assert result.method == method


class TestRanks:
    def test_mid_ranks_for_ties(self) -> None:
        ranks, groups = rank_with_ties([3.0, 1.0, 3.0, 2.0, 3.0])
        assert ranks == [4.0, 1.0, 4.0, 2.0, 4.0]
        assert sorted(groups) == [1, 1, 3]

    def test_no_ties(self) -> None:
        ranks, groups = rank_with_ties([0.5, 0.1, 0.9])
        assert ranks == [2.0, 1.0, 3.0] and groups == [1, 1, 1]

    def test_ranks_sum_to_the_triangle_number(self) -> None:
        values = [0, 0, 1, 1, 1, 2, 5, 5]
        ranks, _groups = rank_with_ties(values)
        assert sum(ranks) == len(values) * (len(values) + 1) / 2


class TestMethodChoice:
    def test_auto_is_exact_up_to_100_pairs(self) -> None:
        assert mann_whitney_u([1.0] * 10, [2.0] * 10).method == "exact"
        assert mann_whitney_u(list(range(10)), list(range(11))).method == "asymptotic"

    def test_auto_exact_handles_ties(self) -> None:
        x, y = TIES
        result = mann_whitney_u(x, y)
        assert result.method == "exact" and result.ties
        assert result.p_value == pytest.approx(0.14285714285714285)

    def test_completely_separated_samples_reach_the_smallest_p(self) -> None:
        result = mann_whitney_u([5, 6, 7, 8], [1, 2, 3, 4])
        assert result.u == 16 and result.p_value == pytest.approx(1 / 70)
        assert smallest_p_value(4, 4) == pytest.approx(1 / 70)

    def test_identical_samples_give_p_one(self) -> None:
        for method in ("exact", "asymptotic"):
            result = mann_whitney_u([0.0] * 5, [0.0] * 5, method=method)
            assert result.p_value == 1.0 and result.u == 12.5

    def test_direction_matters(self) -> None:
        worse, better = [0.2, 0.3, 0.25, 0.4, 0.35], [0.01, 0.02, 0.03, 0.015, 0.025]
        assert mann_whitney_u(worse, better, "greater").p_value < 0.01
        assert mann_whitney_u(worse, better, "less").p_value > 0.99


class TestInputs:
    @pytest.mark.parametrize("x, y", [([], [1.0]), ([1.0], [])])
    def test_empty_sample(self, x: List[float], y: List[float]) -> None:
        with pytest.raises(ValueError):
            mann_whitney_u(x, y)

    def test_nan_refused(self) -> None:
        with pytest.raises(ValueError):
            mann_whitney_u([math.nan, 1.0], [2.0])

    def test_unknown_alternative_and_method(self) -> None:
        with pytest.raises(ValueError):
            mann_whitney_u([1.0], [2.0], alternative="bigger")
        with pytest.raises(ValueError):
            mann_whitney_u([1.0], [2.0], method="bootstrap")


def test_smallest_p_value_decides_the_minimum_samples() -> None:
    # With 3 per side the exact test can reach 1/20 = 0.05 at best: never below alpha 0.05.
    assert smallest_p_value(3, 3) == pytest.approx(0.05)
    assert smallest_p_value(4, 4) < 0.05
    assert smallest_p_value(4, 4, "two-sided") == pytest.approx(2 / 70)


def test_median_and_normal_tail() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    with pytest.raises(ValueError):
        median([])
    assert normal_sf(0.0) == pytest.approx(0.5)
    assert normal_sf(1.959963984540054) == pytest.approx(0.025)
