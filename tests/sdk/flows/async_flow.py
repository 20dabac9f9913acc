"""An asynchronous endpoint with the SDK: deploy with AsyncInferenceConfig, predict_async,
get_result from S3."""

from __future__ import annotations

import sagemaker
from common import INSTANCE, args, result, sklearn_model
from sagemaker.async_inference import AsyncInferenceConfig, WaiterConfig
from sagemaker.deserializers import JSONDeserializer
from sagemaker.serializers import CSVSerializer

given = args()
session = sagemaker.Session()
model = sklearn_model(given, session)
predictor = model.deploy(
    initial_instance_count=1,
    instance_type=INSTANCE,
    async_inference_config=AsyncInferenceConfig(output_path=given["output"]),
    serializer=CSVSerializer(),
    deserializer=JSONDeserializer(),
    wait=False,
)
session.wait_for_endpoint(predictor.endpoint_name, poll=1)
# SDK v2 sends InvokeEndpointAsync no ContentType (it sets it on the S3 object it uploads):
# say it, or the container reads the input as its default, JSON.
response = predictor.predict_async(data=given["rows"], initial_args={"ContentType": "text/csv"})
# The SDK also polls for the failure object in a thread of its own, until its waiter gives up:
# the process ends max_attempts * delay seconds after the call at the latest.
answer = response.get_result(WaiterConfig(max_attempts=15, delay=1))
predictor.delete_endpoint(delete_endpoint_config=False)
result(answer=answer, output=response.output_path, kind=type(predictor).__name__)
