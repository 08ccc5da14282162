"""Audits, activation captures and the corpus filter on a Ray cluster (``pip install 'layerguard[ray]'``).

- :mod:`~layerguard.distributed.cluster`: connecting (or starting a local Ray), resources, clear errors;
- :mod:`~layerguard.distributed.pool`: a pool of actors that replaces an actor that died and re-queues its work;
- :mod:`~layerguard.distributed.audit`: :class:`RayExecutor`, the runner's cells on model-replica actors;
- :mod:`~layerguard.distributed.capture`: captures and directions from actor pools, fitted on the driver;
- :mod:`~layerguard.distributed.filter`: the corpus filter on Ray Data, resumable per input shard.

Ray is imported only inside functions, so nothing here costs anything without it.
"""
