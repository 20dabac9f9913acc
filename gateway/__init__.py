"""The gateway: SageMaker's runtime API in front of up to 15 model containers.

The folders say when their code runs:

Per request (the data plane), outside in:
    edge/       the HTTP edge: the slow-client guard (guard.py), authentication (auth.py), the
                invocations hot path (hotpath.py), the other routes (app.py, model_routes.py)
                and the rendering of errors in SageMaker's shape (errors.py)
    dispatch.py the transport-agnostic core: Direct or Serial, one step after another
    models/     multi-model hosting: which models are loaded, the disk cache, the model store
    upstream/   the pooled HTTP clients that talk to the containers

Per container (the lifecycle):
    lifecycle/  the supervisor (start, health checks, restarts), container logs, and the
                backends that run a container (process, docker, external)
    artifacts/  model data fetched (a folder, file:// or s3://) and unpacked, for a container's
                model folder and for the model store alike

While serving, on request of the control plane:
    control/    SageMaker's control plane (JSON 1.1 at ``POST /``): models, endpoint configs,
                endpoints, transform jobs; translate.py maps them to and from the spec
    state/      the embedded SQLite database they live in, one transaction per change
    lifecycle/reconciler.py  starts, updates (blue/green) and stops endpoints as the state says

Per job or at deploy time:
    batch/      batch transform: a data set through an endpoint
    ops/        images, compose projects, HAProxy and Kubernetes rendering, load tests
    cli/        the ``tandem`` command, one module per command group

Shared by all: runtime.py (the live state the supervisor writes and the rest read),
settings.py (``TANDEM_*``), errors.py (one root, ``TandemError``; one wire base, ``ApiError``),
metrics.py. serve.py assembles ``tandem serve`` (edge/server.py: its socket, lock and uvicorn).
The layers are checked by tests/test_layers.py: cli -> serve -> batch -> control -> edge |
lifecycle -> state -> dispatch -> models -> upstream; ops imports nothing of the serving path.
docs/architecture.md walks one request through these files.
"""
