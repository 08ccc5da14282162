"""Prometheus metrics of the service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "layerguard_requests_total",
            "Guarded requests by endpoint and decision",
            ["endpoint", "decision"],
            registry=r,
        )
        self.latency = Histogram(
            "layerguard_request_latency_seconds",
            "End-to-end latency of guarded requests",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.guard_latency = Histogram(
            "layerguard_guard_latency_seconds",
            "Latency of the input guard (all rings)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.ring_latency = Histogram(
            "layerguard_ring_latency_seconds",
            "Latency of each ring",
            ["ring"],
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=r,
        )
        self.halts = Counter("layerguard_halts_total", "Generations halted by an output monitor", ["ring"], registry=r)
        self.rate_limited = Counter(
            "layerguard_rate_limited_total", "Requests refused by a rate limit", ["kind"], registry=r
        )
        self.errors = Counter(
            "layerguard_http_errors_total", "Error responses by status and code", ["status", "code"], registry=r
        )
        self.escalations = Counter("layerguard_escalations_total", "Escalations created", ["kind"], registry=r)
        self.tool_calls = Counter(
            "layerguard_tool_calls_total",
            "Tool calls proposed by the model, by gate decision",
            ["decision"],
            registry=r,
        )
        self.in_flight = Gauge("layerguard_in_flight_requests", "Requests being served", registry=r)
        self.queue_depth = Gauge(
            "layerguard_model_queue_depth", "Prefills and answers waiting for the local model", registry=r
        )
        self.generation_waiting = Gauge(
            "layerguard_generation_waiting", "Allowed requests waiting for a generation permit", registry=r
        )
