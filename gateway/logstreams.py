"""CloudWatch Logs' names for the containers' logs, as SageMaker names them.

One place for them: the edge puts a failing container's stream in ``ModelError``'s
``LogStreamArn``, and ``gateway.logs`` serves the streams under the same names.
"""

from __future__ import annotations

import hashlib

#: SageMaker's log groups: one per endpoint, one for every transform job.
ENDPOINT_GROUP = "/aws/sagemaker/Endpoints/"
TRANSFORM_GROUP = "/aws/sagemaker/TransformJobs"
#: An inference component's copies log to a group of their own (one stream per copy).
COMPONENT_GROUP = "/aws/sagemaker/InferenceComponents/"


def instance_id(folder: str) -> str:
    """A stable EC2-style id for the instance whose containers live in ``folder``."""
    return "i-" + hashlib.sha256(folder.encode()).hexdigest()[:17]


def endpoint_stream(variant: str, folder: str, hostname: str, containers: int) -> str:
    """SageMaker's stream of an endpoint's container: ``variant/instance``, and the container's
    name after it when the model has more than one."""
    stream = f"{variant}/{instance_id(folder)}"
    return f"{stream}/{hostname}" if containers > 1 else stream


def job_stream(job: str) -> str:
    """A transform job's stream (its one instance): ``job/instance``."""
    return f"{job}/{instance_id(job)}"


def stream_arn(region: str, account: str, group: str, stream: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}"
