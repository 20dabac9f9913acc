"""``frozen_start``: the start's objects leave the cyclic collector's full passes while serving."""

from __future__ import annotations

import gc
import weakref

from gateway.serve import frozen_start


class Node:
    """A cycle's member (weak-referenceable, so the test can see when it is freed)."""

    def __init__(self) -> None:
        self.other: Node | None = None


def test_start_objects_are_frozen_while_serving_and_given_back_after() -> None:
    made_at_start = Node()
    made_at_start.other = Node()
    made_at_start.other.other = made_at_start  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(made_at_start)
    with frozen_start() as frozen:
        assert frozen > 0
        made_at_start = None  # type: ignore[assignment]  # dropped while serving
        gc.collect()
        assert gone() is not None  # a full pass does not walk it: the documented cost
        later = Node()
        later.other = Node()
        later.other.other = later
        later_gone = weakref.ref(later)
        later = None  # type: ignore[assignment]
        gc.collect()
        assert later_gone() is None  # what serving makes is collected as always
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None  # given back at the end, and freed


def test_the_start_garbage_is_collected_before_freezing() -> None:
    dropped = Node()
    dropped.other = Node()
    dropped.other.other = dropped
    gone = weakref.ref(dropped)
    dropped = None  # type: ignore[assignment]  # garbage already, before the freeze
    with frozen_start():
        assert gone() is None
