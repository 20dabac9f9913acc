"""Writes to a state database in a loop, printing each change once its commit has returned.

Run by ``test_sigkill.py`` as ``python -m tests.gateway.state.writer DB FIRST``; every printed
line is a write the database acknowledged, which must survive the SIGKILL that ends this process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.state import EndpointStatus, JobStatus, StateStore


def say(*words: object) -> None:
    print(*words, flush=True)


def main() -> None:
    path, first = Path(sys.argv[1]), int(sys.argv[2])
    store = StateStore(path)
    say("open")
    i = first
    while True:
        model, config, endpoint, job = f"m{i}", f"c{i}", f"e{i}", f"j{i}"
        store.add_model(model, f"arn:{model}", {"ModelName": model, "Pad": "x" * (i % 500)})
        say("model", model)
        store.add_config(config, f"arn:{config}", {"EndpointConfigName": config}, {"A": model})
        say("config", config, model)
        store.add_endpoint(endpoint, f"arn:{endpoint}", config, {"EndpointName": endpoint})
        say("endpoint", endpoint, config)
        store.set_endpoint_status(endpoint, EndpointStatus.IN_SERVICE)
        say("status", endpoint, "InService")
        if i % 3 == 0:
            store.begin_delete(endpoint)
            say("status", endpoint, "Deleting")
            store.remove_endpoint(endpoint)
            say("removed", endpoint)
        store.add_job(job, f"arn:{job}", model, {"TransformJobName": job})
        say("job", job, model)
        store.set_job_progress(job, {"records": i})
        say("progress", job, i)
        store.set_job_status(job, JobStatus.COMPLETED)
        say("jobstatus", job, "Completed")
        i += 1


if __name__ == "__main__":
    main()
