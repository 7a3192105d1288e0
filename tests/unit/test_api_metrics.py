"""The API's lock-free latency histogram and lookup counters, as Prometheus reads them."""

from prometheus_client.parser import text_string_to_metric_families

from selfheal.api.metrics import ApiMetrics


def samples(metrics: ApiMetrics) -> dict[tuple, float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_latency_buckets_are_cumulative_with_le_bounds_inclusive_and_the_sum_and_count_follow():
    metrics = ApiMetrics()
    timer = metrics.request_timer(route="/api/dev/self-heal", method="POST")
    assert metrics.request_timer(route="/api/dev/self-heal", method="POST") is timer  # one per route
    for seconds in (0.0002, 0.0005, 0.003, 2.0):  # 0.0005 sits exactly on a bound: le means <=
        timer.observe(seconds)
    got = samples(metrics)
    labels = (("method", "POST"), ("route", "/api/dev/self-heal"))

    def bucket(le: str) -> float:
        return got[("selfheal_api_request_seconds_bucket", tuple(sorted((*labels, ("le", le)))))]

    assert [bucket(le) for le in ("0.0005", "0.001", "0.0025", "0.005", "1.0", "+Inf")] == [2, 2, 2, 3, 3, 4]
    assert got[("selfheal_api_request_seconds_count", labels)] == 4
    assert abs(got[("selfheal_api_request_seconds_sum", labels)] - 2.0037) < 1e-9


def test_lookup_hits_and_misses_are_counters_by_outcome():
    metrics = ApiMetrics()
    metrics.lookup_hits += 3
    metrics.lookup_misses += 1
    got = samples(metrics)
    assert got[("selfheal_api_lookups_total", (("outcome", "hit"),))] == 3
    assert got[("selfheal_api_lookups_total", (("outcome", "miss"),))] == 1
