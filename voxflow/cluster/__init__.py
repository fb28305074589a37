"""voxflow as a cluster: shared state in Redis (workers, calls, flow versions, checkpoints).

Only ``voxflow run --redis URL`` loads this package; without it voxflow runs on one process.
"""

from voxflow.cluster.metrics import MetricsServer, WorkerCollector
from voxflow.cluster.state import CallEntry, ClusterState, WorkerEntry, node_app

__all__ = [
    "CallEntry",
    "ClusterState",
    "MetricsServer",
    "WorkerCollector",
    "WorkerEntry",
    "node_app",
]
