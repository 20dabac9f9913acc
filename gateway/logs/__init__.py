"""CloudWatch Logs' read side on the gateway's port, over the containers' log files.

``LogsService.acall`` answers ``X-Amz-Target: Logs_20140328.<Op>`` calls; ``gateway.serve`` hooks
it into the control plane's ``POST /`` route by that prefix.
"""

from gateway.logs.checks import TARGET_PREFIX
from gateway.logs.service import LogsService

__all__ = ["TARGET_PREFIX", "LogsService"]
