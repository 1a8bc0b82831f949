"""What a failing Airflow task may say: the error's type and its task, never the error's text.

Airflow logs the exception that leaves a task with its message and every exception chained
to it (`__cause__`, and `__context__` unless suppressed), and hands it to the failure
callbacks. A library's message may quote input values: DuckDB and polars quote the value
they could not convert, a member ID as readily as any other. The command line prints only
the error's type unless `-v`; a task has no `-v`, so `scrub_failures` replaces whatever
leaves it by a `TaskFailed` that carries the type, the task and nothing chained.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class TaskFailed(Exception):
    """A task's failure, as far as it may be told: the original error's type and the task.

    An InputError keeps its message: the project writes those for the console (the command
    line prints them too), naming settings, folders and files, never values from a row.
    """

    def __init__(self, task: str, error_type: str, message: str | None = None) -> None:
        self.task, self.error_type = task, error_type
        told = f"{error_type} in {task}"
        super().__init__(f"{told}: {message}" if message else told)


def scrub_failures(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, raising only a TaskFailed when anything fails in it."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            failure = TaskFailed(
                function.__name__,
                type(error).__name__,
                str(error) if _is_input_error(error) else None,
            )
        # raised outside the handler and `from None`: no cause, no context, and a traceback
        # that ends here, so nothing of the original reaches a log
        raise failure from None

    return run


def _is_input_error(error: Exception) -> bool:
    # an InputError can only come from an imported pipelines.ingest.load; the DAG file imports
    # this module at parse time, where importing ingest (DuckDB, polars) would be slow
    ingest = sys.modules.get("pipelines.ingest.load")
    return ingest is not None and isinstance(error, ingest.InputError)


def failure_type(error: BaseException | None) -> str | None:
    """The type an alert names: the original error's, behind a TaskFailed."""
    if error is None:
        return None
    return error.error_type if isinstance(error, TaskFailed) else type(error).__name__
