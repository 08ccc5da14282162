"""Connecting to Ray: an existing cluster (``--ray-address``) or a local one started here.

Errors a user can cause (Ray not installed, an address nobody answers at) are
:class:`~layerguard.errors.LayerguardError` with a hint, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from layerguard.errors import InvalidInputError, MissingPackageError

# Passed on to the actors, so a replica finds the same model cache and stays offline like the driver.
FORWARDED_ENV = ("LAYERGUARD_CACHE_DIR", "HF_HUB_OFFLINE", "HF_HOME", "LAYERGUARD_PROGRESS", "TRANSFORMERS_OFFLINE")


def require_ray() -> Any:
    """The ``ray`` module, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise MissingPackageError(
            "the ray executor needs the 'ray' package, which is not installed",
            hint="pip install 'layerguard[ray]' (or run without --executor ray)",
        ) from None
    return ray


def forwarded_env() -> dict[str, str]:
    """The driver's settings that actors must share (model cache, offline mode)."""
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


def apply_env(env: dict[str, str]) -> None:
    """In an actor: take over the driver's settings before anything loads a model."""
    os.environ.update(env)


@dataclass
class Cluster:
    """What the driver is connected to.

    Attributes:
        address: The cluster's address (``local`` when this process started it).
        nodes: Alive nodes.
        cpus: CPUs over all nodes.
        gpus: GPUs over all nodes.
        started_here: This process started the Ray instance (and shuts it down in :meth:`close`).
    """

    address: str
    nodes: int
    cpus: float
    gpus: float
    started_here: bool

    def describe(self) -> str:
        """One line for the log."""
        return f"ray cluster {self.address}: {self.nodes} node(s), {self.cpus:g} CPU(s), {self.gpus:g} GPU(s)"

    def actor_resources(self, cpus_per_actor: float = 1.0) -> dict[str, float]:
        """What each model-replica actor declares: one GPU when the cluster has GPUs, else CPUs."""
        if self.gpus >= 1:
            return {"num_gpus": 1.0, "num_cpus": 1.0}
        return {"num_cpus": float(cpus_per_actor)}

    def max_actors(self, cpus_per_actor: float = 1.0) -> int:
        """How many replicas fit at once (one per GPU, else per ``cpus_per_actor`` CPUs)."""
        if self.gpus >= 1:
            return int(self.gpus)
        return max(1, int(self.cpus // cpus_per_actor))

    def close(self) -> None:
        """Shut down a Ray instance this process started; leave a cluster it joined alone."""
        if self.started_here:
            require_ray().shutdown()


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nobody listens at (Ray itself retries for minutes).

    Raises:
        InvalidInputError: a malformed address, or no answer within ``timeout_s``.
    """
    import socket

    if address in ("auto", "local") or "://" in address:
        return  # Ray resolves these itself
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InvalidInputError(f"--ray-address {address!r} is not host:port", hint="e.g. --ray-address 10.0.0.5:6379")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise InvalidInputError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc})",
            hint="start one with `ray start --head` and pass the address it prints, "
            "or leave out --ray-address to run Ray on this machine",
        ) from None


def connect(address: str | None = None, *, log: Callable[[str], None] = lambda m: None) -> Cluster:
    """Join the cluster at ``address`` (``host:port`` or ``auto``), or start Ray on this machine.

    A process already connected (``ray.init`` called earlier, e.g. by a test or a notebook)
    is reused as it is.

    Raises:
        MissingPackageError: ray is not installed.
        InvalidInputError: nobody answers at ``address``.
    """
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        if address:
            check_reachable(address)
        try:
            if address:
                ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
                started = True
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
            raise InvalidInputError(
                f"cannot connect to a Ray cluster at {address!r}: {str(exc).splitlines()[0] if str(exc) else exc}",
                hint="start one with `ray start --head` and pass its address (host:port, as printed), "
                "or leave out --ray-address to run Ray on this machine",
            ) from None
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    gcs = ray.get_runtime_context().gcs_address if hasattr(ray.get_runtime_context(), "gcs_address") else address
    cluster = Cluster(
        address=str(address or gcs or "local"),
        nodes=nodes,
        cpus=float(res.get("CPU", 0.0)),
        gpus=float(res.get("GPU", 0.0)),
        started_here=started,
    )
    log(cluster.describe())
    return cluster
