"""Reliability checks: soak, killed containers, slow clients, malformed requests (see report.py)."""
