"""The data plane: every invocation, whichever way it came in, runs through ``invocation.py``.

``plane.py`` builds it once (``DataPlane``); ``invocation.py`` is the one use case (variant,
instance, in flight, dispatch, recording, copies); ``dispatch.py`` sends a request through an
instance's containers, Direct or Serial; ``streamed.py`` is a streamed answer; ``failures.py``
makes the errors of a failed step; ``shadows.py`` holds the shadow copies in flight. Nothing here
speaks HTTP to clients: the edges (``gateway/edge``, the async workers) do.
"""
