"""The edges of histogram_quantile as PromQL defines them (its exact agreement with a real
Prometheus is tests/integration/test_onboarding.py)."""

import math

from ledger.histograms import bucket_quantile

INF = math.inf
BUCKETS = [(0.1, 50.0), (0.25, 80.0), (0.5, 95.0), (1.0, 100.0), (INF, 100.0)]


def test_linear_inside_the_bucket_of_the_rank_from_zero_in_the_first():
    assert bucket_quantile(0.25, BUCKETS) == 0.05
    assert bucket_quantile(0.65, BUCKETS) == 0.1 + 0.15 * (15 / 30)
    assert bucket_quantile(0.99, list(reversed(BUCKETS))) == 0.5 + 0.5 * (4 / 5)  # any order


def test_a_rank_in_the_inf_bucket_is_the_highest_finite_bound():
    assert bucket_quantile(0.99, [(0.1, 50.0), (0.5, 90.0), (INF, 100.0)]) == 0.5


def test_what_has_no_answer_and_the_bounds_of_q():
    assert math.isnan(bucket_quantile(0.5, [(0.1, 5.0), (1.0, 10.0)]))  # no +Inf bucket
    assert math.isnan(bucket_quantile(0.5, [(INF, 10.0)]))  # one bucket
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]))  # nothing observed
    assert math.isnan(bucket_quantile(math.nan, BUCKETS))
    assert (bucket_quantile(-0.1, BUCKETS), bucket_quantile(1.1, BUCKETS)) == (-INF, INF)


def test_counts_made_monotonic_buckets_of_one_bound_merged_and_a_bound_below_zero():
    assert bucket_quantile(0.5, [(0.1, 50.0), (0.25, 40.0), (INF, 100.0)]) == 0.1  # 40 raised to 50
    assert bucket_quantile(0.5, [(0.1, 25.0), (0.1, 25.0), (INF, 100.0)]) == 0.1
    assert bucket_quantile(0.1, [(-1.0, 20.0), (INF, 100.0)]) == -1.0
