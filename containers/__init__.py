"""What runs inside every model container: SageMaker's container contract around one framework.

The modules, in the order a request meets them:

- per request: ``app`` (the contract's routes) -> ``service`` (the transport-agnostic core) ->
  ``handler`` (a user's ``inference.py`` over the framework's defaults) -> ``codecs`` (bodies to
  arrays and back); ``fastpath`` picks the predictions that run on the event loop, ``workers``
  runs the others in threads;
- per model: ``models`` (the models the container holds, by name, in either mode);
- per process: ``cli`` (``python -m containers serve``), ``settings`` (the contract's environment),
  ``resources`` (the CPUs and memory it may use), ``frameworks`` (what a framework implements, and
  which exist), ``errors`` (every error a client hears, with its HTTP status);
- the frameworks: ``sklearn/``, ``pytorch/``, ``tensorflow/``, each imported only when chosen.
"""
