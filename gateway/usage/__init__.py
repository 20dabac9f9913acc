"""The usage ledger: what each model, component and variant used, hour by hour, and its cost.

A second reader of the metric store's drained events (``service.py`` taps the recorder), so the
hot path pays nothing for it; hourly rows in the state database (``store.py``), folded from the
events (``ledger.py``), summed and attributed for ``GET /usage`` and ``tandem usage``
(``report.py``, ``route.py``), and the top models for bounded Prometheus series (``topk.py``).
See docs/usage.md. Imports nothing of the serving path: it is handed events.
"""

from gateway.usage.route import usage_route
from gateway.usage.service import UsageService

__all__ = ["UsageService", "usage_route"]
