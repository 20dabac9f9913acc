"""The gateway: SageMaker's runtime and control APIs in front of model containers.

The one map of this tree (a glossary, every folder and top-level module, the import layers, one
request and CreateEndpoint followed file by file) is ``docs/architecture.md``; the layers it draws
are the contracts in ``pyproject.toml``, checked by ``tests/test_layers.py``. In one line each:
``serve.py`` builds everything once (the composition root); ``edge/`` is HTTP only; ``serving/``
is the data plane, where every invocation runs; ``control/`` and ``state/`` are the control
plane and its database; ``lifecycle/`` runs containers; ``live.py`` is what serves now.
"""
