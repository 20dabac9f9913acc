"""``tandem batch``: run a whole data set through an endpoint, like a SageMaker transform job.

Flags are named after ``CreateTransformJob``'s fields. The batch package is imported only when the
command runs, so ``tandem --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, fail, failures


def batch(
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="A file, a folder, or a file:// or s3:// prefix (every object)."
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Folder or s3:// prefix for <file>.out outputs.")
    ],
    spec: Annotated[
        Path | None,
        typer.Option(help="Endpoint spec: start it for the job and stop it after."),
    ] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Base URL of a running gateway (with --endpoint).")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Endpoint name.")] = None,
    split_type: Annotated[
        str, typer.Option(help="None: a file is one record; Line: a line is one record.")
    ] = "None",
    batch_strategy: Annotated[
        str | None,
        typer.Option(
            help="SingleRecord or MultiRecord (default: the container's, else MultiRecord)."
        ),
    ] = None,
    max_payload_mb: Annotated[
        int | None,
        typer.Option(help="Largest request, 1-100 MB (default: the container's, else 6)."),
    ] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option(
            help="Requests in flight; x payload <= 100 MB (default: the container's, else 1)."
        ),
    ] = None,
    assemble_with: Annotated[
        str, typer.Option(help="None: outputs back to back; Line: one line per record.")
    ] = "None",
    content_type: Annotated[str | None, typer.Option(help="Content-Type of the records.")] = None,
    accept: Annotated[str | None, typer.Option(help="Accept: the outputs' wanted type.")] = None,
    input_filter: Annotated[
        str, typer.Option(help="JSONPath choosing what of a record is sent, e.g. '$[1:]'.")
    ] = "$",
    output_filter: Annotated[
        str, typer.Option(help="JSONPath choosing what of the (joined) output is written.")
    ] = "$",
    join_source: Annotated[
        str, typer.Option(help="Input: write each output joined to its input record; None.")
    ] = "None",
    timeout: Annotated[float, typer.Option(help="Seconds one invocation may take.")] = 600.0,
    retries: Annotated[
        int, typer.Option(help="Retries on throttling, 5xx and connection errors.")
    ] = 3,
    target_container: Annotated[
        str | None, typer.Option(help="Container hostname (Direct endpoints).")
    ] = None,
    target_model: Annotated[
        str | None, typer.Option(help="Model path under the prefix (MultiModel endpoints).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Redo files whose .out exists (skipped otherwise).")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="A live bar, or plain lines (default: a bar on a terminal).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Transform every record under INPUT through an endpoint; write OUTPUT/<file>.out."""
    from gateway.batch import BatchConfig, run_batch

    logging.basicConfig(
        level=log_level.upper(), format="tandem batch: %(message)s", stream=sys.stderr, force=True
    )
    values: dict[str, Any] = {
        "input": input,
        "output": output,
        "spec": spec,
        "endpoint_url": endpoint_url,
        "endpoint": endpoint,
        "split_type": split_type,
        "batch_strategy": batch_strategy,
        "max_payload_mb": max_payload_mb,
        "max_concurrent": max_concurrent,
        "assemble_with": assemble_with,
        "content_type": content_type,
        "accept": accept,
        "input_filter": input_filter,
        "output_filter": output_filter,
        "join_source": join_source,
        "timeout": timeout,
        "retries": retries,
        "target_container": target_container,
        "target_model": target_model,
        "overwrite": overwrite,
        "progress": progress,
    }
    try:
        with failures():
            config = BatchConfig.build(**values)
            report = run_batch(config)
    except (KeyboardInterrupt, asyncio.CancelledError):
        fail(EXIT_INTERRUPTED, "interrupted; finished files are kept, rerun to do the rest")
    sys.stderr.write(report.summary() + "\n")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


if __name__ == "__main__":  # ``python -m gateway.cli.batch``, before the command is registered
    typer.run(batch)
