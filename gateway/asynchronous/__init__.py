"""InvokeEndpointAsync: requests accepted into a durable queue and answered into storage.

``submit.py`` checks a call and queues it (the route, ``gateway/edge/async_route.py``, only
parses the wire format); ``worker.py`` takes queued requests in order (``claiming.py``: what it
claims next) through the dispatcher and writes each answer or failure (``outcome.py``: what an
end is made of; ``storage.py``: S3 or folders, atomically; ``slots.py``: how many run per
endpoint; ``commits.py``: the queue's writes, a transaction per group); ``notify.py`` POSTs
SageMaker's notification to a webhook; ``metrics.py`` publishes the backlog gauges. The queue
itself is a table of the state database (``gateway/state/queue.py``), so a request accepted
before a crash is answered after the restart. ``AsyncInference`` assembles them for
``tandem serve``.
"""

from gateway.asynchronous.service import AsyncInference

__all__ = ["AsyncInference"]
