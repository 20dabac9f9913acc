"""Application Auto Scaling for SageMaker endpoint variants, over the gateway's metric store.

``ScalingApi`` (``api.py``) serves the operations, checked in ``checks.py``, ``policies.py``
and ``schedule.py``, stored in the state database (``store.py``); ``autoscaling_route``
(``route.py``) speaks JSON 1.1 on the gateway's port; ``Evaluator`` (``evaluator.py``) runs in
the background and scales through the control plane's ``UpdateEndpointWeightsAndCapacities``.
See docs/autoscaling.md. It reaches the control plane only through the ``Control`` protocol and
the metrics only through CloudWatch's operations.
"""

from gateway.autoscaling.api import Control, ScalingApi
from gateway.autoscaling.evaluator import Evaluator
from gateway.autoscaling.policies import StoreMetrics
from gateway.autoscaling.route import autoscaling_route
from gateway.autoscaling.store import ScalingStore

__all__ = [
    "Control",
    "Evaluator",
    "ScalingApi",
    "ScalingStore",
    "StoreMetrics",
    "autoscaling_route",
]
