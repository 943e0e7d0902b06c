"""Trigger rules: whether a task whose upstream tasks have all settled runs, or what it becomes.

`trigger_decision(rule, upstream states)` is the whole of it (Airflow's rules, DESIGN.md
section 1); the engine calls it once per task, when its last upstream task settles.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitflowd.dag import TriggerRule
from gitflowd.state import TaskStatus

FAILED_STATES = frozenset({TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.INTERRUPTED, TaskStatus.UPSTREAM_FAILED})


def trigger_decision(rule: TriggerRule, upstream: Sequence[TaskStatus]) -> TaskStatus | None:
    """None if a task with these settled upstream states runs, else the state it takes."""
    if not upstream or rule in (TriggerRule.ALWAYS, TriggerRule.ALL_DONE):
        return None
    failed = sum(s in FAILED_STATES for s in upstream)
    success = sum(s is TaskStatus.SUCCESS for s in upstream)
    if rule is TriggerRule.ALL_SUCCESS:
        return None if success == len(upstream) else TaskStatus.UPSTREAM_FAILED if failed else TaskStatus.SKIPPED
    if rule is TriggerRule.ALL_FAILED:
        return None if failed == len(upstream) else TaskStatus.SKIPPED
    if rule is TriggerRule.ONE_SUCCESS:
        return None if success else TaskStatus.UPSTREAM_FAILED if failed else TaskStatus.SKIPPED
    if rule is TriggerRule.ONE_FAILED:
        return None if failed else TaskStatus.SKIPPED
    return TaskStatus.UPSTREAM_FAILED if failed else None  # NONE_FAILED
