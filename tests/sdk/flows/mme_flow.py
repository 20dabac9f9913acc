"""MultiDataModel over SKLearnModel: one endpoint, models added under its prefix, each invoked
by its TargetModel; the code comes from the SDK's upload for every model."""

from __future__ import annotations

import sagemaker
from common import INSTANCE, args, result, sklearn_model
from sagemaker.deserializers import JSONDeserializer
from sagemaker.multidatamodel import MultiDataModel
from sagemaker.serializers import CSVSerializer

given = args()
session = sagemaker.Session()
mdm = MultiDataModel(
    name=given["name"],
    model_data_prefix=given["prefix"],
    model=sklearn_model(given, session),
    sagemaker_session=session,
)
predictor = mdm.deploy(initial_instance_count=1, instance_type=INSTANCE, wait=False)
session.wait_for_endpoint(predictor.endpoint_name, poll=1)
for name, source in given["models"].items():
    mdm.add_model(model_data_source=source, model_data_path=name)
predictor.serializer = CSVSerializer()
predictor.deserializer = JSONDeserializer()
answers = {
    name: predictor.predict(given["rows"], target_model=name)["probabilities"]
    for name in given["models"]
}
listed = sorted(mdm.list_models())
predictor.delete_endpoint(delete_endpoint_config=False)
result(answers=answers, listed=listed)
