"""The example endpoints: ``churn`` (Serial), ``zoo`` (Direct) and ``tenants`` (MultiModel, two
instances), and the scripts that build them.

The YAML specs live beside this file; ``python -m pipelines.examples.build`` trains their models on
synthetic data and writes SageMaker-style ``model.tar.gz`` artifacts under ``models/`` (gitignored),
where the specs' relative ``model_data`` paths point.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
MODELS_DIR = EXAMPLES_DIR / "models"
SPECS = {
    "churn": EXAMPLES_DIR / "churn.yaml",
    "zoo": EXAMPLES_DIR / "zoo.yaml",
    "tenants": EXAMPLES_DIR / "tenants.yaml",
}
