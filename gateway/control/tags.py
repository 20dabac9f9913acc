"""``ListTags``: the tags a resource was created with, found by its ARN.

``Describe*`` answers leave tags out (as SageMaker's do), so this is how a client reads them back:
``tandem export`` needs the endpoint config's ``tandem:timeout``. Tags are kept as they came, in
the stored request; adding or removing tags later (``AddTags``, ``DeleteTags``) is not done.
"""

from __future__ import annotations

from typing import Any

from gateway.control.context import ControlContext, Result
from gateway.errors import ValidationException

#: ARN resource type -> how to read that kind's stored request.
_KINDS = ("model", "endpoint-config", "endpoint", "transform-job")


def list_tags(ctx: ControlContext, params: dict[str, Any]) -> Result:
    arn = params["ResourceArn"]
    prefix = f"arn:aws:sagemaker:{ctx.region}:{ctx.account}:"
    kind, _, name = arn.removeprefix(prefix).partition("/")
    if not arn.startswith(prefix) or kind not in _KINDS or not name:
        raise ValidationException(
            f"resourceArn: {arn!r} is not the ARN of a model, endpoint config, endpoint or "
            f"transform job of this gateway ({prefix}<kind>/<name>)."
        )
    store = ctx.store
    record: Any = {
        "model": store.get_model,
        "endpoint-config": store.get_config,
        "endpoint": store.get_endpoint,
        "transform-job": store.get_job,
    }[kind](name)
    if record is None:
        raise ValidationException(f'Could not find resource "{arn}".')
    return Result({"Tags": list(record.request.get("Tags", []))})
