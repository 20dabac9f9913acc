"""Batch transform throughput against the same model predicting in-process.

    python benchmarks/batch.py [--records 25000] [--concurrent 2] [--payload-mb 6]

Writes an IMDb-test-set-like CSV (25,000 reviews of ~1.1 KB, one quoted text column, ~27 MB),
trains a scikit-learn TF-IDF + logistic regression pipeline on other synthetic reviews, serves it
with the real scikit-learn container behind ``tandem serve``, and runs ``tandem batch`` over the
file (MultiRecord, Line split, 2 concurrent requests). The baseline is the same model predicting the
same rows in this process in one call. Prints records/s of both and their ratio (goal >= 0.7), from
one run, plus the in-process time with CSV parsing included for reference. Outputs are checked to
equal the in-process predictions.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.servers import free_port, wait_ready  # noqa: E402

GOAL = 0.7
WORDS = [f"w{i}" for i in range(6000)]
POSITIVE = ["great", "superb", "moving", "brilliant", "charming", "masterpiece", "fun", "loved"]
NEGATIVE = ["awful", "boring", "dull", "waste", "terrible", "clumsy", "mess", "hated"]


def reviews(n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` synthetic reviews (~1.1 KB each) and their sentiment; commas and quotes included."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.random() < 0.5
        cue = POSITIVE if label else NEGATIVE
        words = [rng.choice(cue) if rng.random() < 0.06 else rng.choice(WORDS) for _ in range(190)]
        words[rng.randrange(len(words))] += ","
        words[rng.randrange(len(words))] = '"quoted"'
        texts.append(" ".join(words))
        labels.append(int(label))
    return texts, labels


def write_csv(path: Path, texts: list[str]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([t] for t in texts)


def train(model_dir: Path) -> Any:
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    texts, labels = reviews(5000, seed=1)
    model = Pipeline(
        [
            ("tfidf", ColumnTransformer([("text", TfidfVectorizer(max_features=20000), 0)])),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    )
    import numpy as np

    model.fit(np.array([[t] for t in texts], dtype=object), labels)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=25_000)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--payload-mb", type=int, default=6)
    args = parser.parse_args()

    from containers.codecs import decode_csv
    from gateway.batch import BatchConfig, run_batch

    with tempfile.TemporaryDirectory(prefix="tandem-batch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        texts, _ = reviews(args.records, seed=2)
        data = tmp / "in" / "imdb_test.csv"
        data.parent.mkdir()
        write_csv(data, texts)
        size_mb = data.stat().st_size / 1e6
        model = train(tmp / "model")

        # Baseline: the rows already decoded, one predict call; and with parsing, for reference.
        started = time.perf_counter()
        rows = decode_csv(data.read_bytes())
        parsed = time.perf_counter()
        expected = model.predict(rows)
        predicted = time.perf_counter()
        in_process = args.records / (predicted - parsed)
        in_process_parse = args.records / (predicted - started)

        spec = tmp / "imdb.yaml"
        spec.write_text(
            "name: imdb\ncontainers:\n  - framework: sklearn\n"
            f"    model_data: {tmp / 'model'}\n"
            "    environment:\n      SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: text/csv\n"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (tmp / "serve.log").open("wb")
        cmd = [sys.executable, "-m", "gateway", "serve", str(spec), "--port", str(port)]
        cmd += ["--state-dir", str(tmp / "state"), "--log-level", "warning"]
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ},
            start_new_session=True,
        )
        try:
            wait_ready(url + "/ping", proc)
            config = BatchConfig.build(
                input=str(data),
                output=str(tmp / "out"),
                endpoint_url=url,
                endpoint="imdb",
                split_type="Line",
                batch_strategy="MultiRecord",
                assemble_with="Line",
                content_type="text/csv",
                accept="text/csv",
                max_concurrent=args.concurrent,
                max_payload_mb=args.payload_mb,
                progress=False,
            )
            from gateway.batch.progress import Tracker

            report = run_batch(config, tracker=Tracker())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            log.close()
        if not report.ok:
            raise SystemExit(report.summary())
        got = (tmp / "out" / "imdb_test.csv.out").read_text().split()
        if [int(float(v)) for v in got] != [int(v) for v in expected]:
            raise SystemExit("served predictions differ from the in-process ones")
        served = report.records / report.seconds
        result = {
            "records": args.records,
            "csv_mb": round(size_mb, 1),
            "concurrent": args.concurrent,
            "payload_mb": args.payload_mb,
            "in_process_records_per_s": round(in_process),
            "in_process_with_csv_parse_records_per_s": round(in_process_parse),
            "batch_records_per_s": round(served),
            "ratio": round(served / in_process, 3),
            "ratio_vs_parse_and_predict": round(served / in_process_parse, 3),
            "goal": GOAL,
        }
        print(json.dumps(result, indent=2))
        verdict = "meets" if result["ratio"] >= GOAL else "misses"
        print(
            f"batch transform runs at {result['ratio']:.0%} of in-process throughput "
            f"({verdict} the goal of {GOAL:.0%})"
        )


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
