"""``benchmarks/autoscaling.py``: when AWS's rule is met, from the datapoints the gateway keeps,
and the breakdowns a smoke run prints (a whole run takes minutes: docs/autoscaling.md has one;
a smoke run is too short to judge the figures, only that each is printed)."""

from __future__ import annotations

import subprocess

from benchmarks.autoscaling_story import Story, lines, rule_met
from tests.support import PYTHON, ROOT


def test_the_rule_is_met_when_the_third_datapoint_above_closes() -> None:
    # The step at 1003: its own period (1000) is a datapoint like any other, above here.
    points = [(990, 1.0, 700), (1000, 4.4, 900), (1010, 5.0, 1100), (1020, 5.1, 1100)]
    assert rule_met(points, 4.0, after=1003) == 1030.0


def test_a_datapoint_not_above_starts_the_count_again() -> None:
    points = [(1000, 3.9, 900), (1010, 5.0, 1100), (1020, 5.1, 1100), (1030, 5.2, 1100)]
    assert rule_met(points, 4.0, after=1007) == 1040.0
    gap = [(1000, 5.0, 9), (1010, 3.0, 9), (1020, 5.0, 9), (1030, 5.0, 9)]
    assert rule_met(gap, 4.0, after=1000) is None
    missing = [(1000, 5.0, 9), (1020, 5.0, 9), (1030, 5.0, 9)]  # no datapoint: not above
    assert rule_met(missing, 4.0, after=1000) is None


def test_the_breakdown_splits_aws_rule_from_tandem_own_time() -> None:
    story = Story(step=1003.0, points=[(1000, 4.4, 900), (1010, 5.0, 1100), (1020, 5.1, 1100)])
    story.decided, story.launcher, story.serving = 1030.06, 1030.08, 1031.5
    text = "\n".join(lines(story, 4.0))
    assert "the step came 3.0 s into its 10 s period" in text
    assert "holds the step" in text
    assert "AWS's rule met (3rd datapoint above the target closed)   +27.00 s" in text
    assert "so: AWS's rule 27.0 s, then Tandem 1.50 s (the evaluator's look 0.06 s" in text
    assert "not seen" in text  # the container's stages were not given


def test_a_quick_run_prints_both_breakdowns() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "autoscaling.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in (
        "from the step to the second instance serving (seconds after the step):",
        "<- holds the step",
        "AWS's rule met (3rd datapoint above the target closed)",
        "the evaluator decided, UpdateEndpointWeightsAndCapacities",
        "step -> second instance serving:",
        "first answer from zero:",
        "ms after the request: the wake's scaling activity",
        "container: scikit-learn imported, the model loaded",
    ):
        assert line in result.stdout, result.stdout
