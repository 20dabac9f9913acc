"""SKLearnModel(entry_point, source_dir) on a training job's model.tar.gz: deploy, predict (CSV
and JSON), then the SDK's own teardown, each step as a user writes it with SDK v2's defaults."""

from __future__ import annotations

import traceback

import sagemaker
from botocore.exceptions import ClientError
from common import INSTANCE, args, gone, result, sklearn_model
from sagemaker.deserializers import JSONDeserializer
from sagemaker.serializers import CSVSerializer, JSONSerializer

given = args()
session = sagemaker.Session()
model = sklearn_model(given, session)
predictor = model.deploy(initial_instance_count=1, instance_type=INSTANCE)  # waits, as by default
predictor.serializer = CSVSerializer()
predictor.deserializer = JSONDeserializer()
as_csv = predictor.predict(given["rows"])
predictor.serializer = JSONSerializer()
as_json = predictor.predict(given["rows"])
endpoint = predictor.endpoint_name
config = session.sagemaker_client.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
container = session.sagemaker_client.describe_model(ModelName=model.name)["PrimaryContainer"]

# The SDK's teardown: the endpoint and its config, then the model. Predictor.delete_model() names
# the models by reading the endpoint's config, which delete_endpoint() just deleted: SageMaker
# answers ValidationException "Could not find endpoint configuration" there (the SDK's own
# examples hit it, aws/amazon-sagemaker-examples#2340), and so does Tandem. The Model object
# deletes itself by name, which works on both.
teardown = None
late_delete = None
try:
    predictor.delete_endpoint()
    try:
        predictor.delete_model()
    except ClientError as exc:
        late_delete = {"code": exc.response["Error"]["Code"], "message": str(exc)}
    model.delete_model()
    gone(session, endpoint)
except Exception:
    teardown = traceback.format_exc()
    # What works without it: the endpoint first, then what it used.
    sm = session.sagemaker_client
    if endpoint in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]:
        sm.delete_endpoint(EndpointName=endpoint)
        gone(session, endpoint)
    for call, key, name in [
        (sm.delete_endpoint_config, "EndpointConfigName", config),
        (sm.delete_model, "ModelName", model.name),
    ]:
        try:
            call(**{key: name})
        except sm.exceptions.ClientError as exc:
            if "Could not find" not in str(exc):
                raise
sm = session.sagemaker_client
# What is left of this flow's endpoint, config and model (other flows share the gateway).
listed = {
    "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
    "configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
    "models": [m["ModelName"] for m in sm.list_models()["Models"]],
}
mine = {"endpoints": endpoint, "configs": config, "models": model.name}
left = {kind: [n for n in names if n == mine[kind]] for kind, names in listed.items()}
result(
    csv=as_csv,
    json=as_json,
    endpoint=endpoint,
    model=model.name,
    image=container["Image"],
    environment=container["Environment"],
    teardown_error=teardown,
    late_delete=late_delete,
    left=left,
)
