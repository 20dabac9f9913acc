"""A batch transform with the SDK's defaults: ``transform(..., wait=True)`` follows the job and
prints its containers' log lines, read through CloudWatch Logs (``logs=True``)."""

from __future__ import annotations

import sagemaker
from common import INSTANCE, args, result, sklearn_model

given = args()
session = sagemaker.Session()
model = sklearn_model(given, session)
transformer = model.transformer(
    instance_count=1,
    instance_type=INSTANCE,
    output_path=given["output"],
    accept="text/csv",
    assemble_with="Line",
    strategy="MultiRecord",
)
transformer.transform(given["input"], content_type="text/csv", split_type="Line", wait=True)
job = transformer.latest_transform_job.name
status = session.sagemaker_client.describe_transform_job(TransformJobName=job)
result(job=job, status=status["TransformJobStatus"])
