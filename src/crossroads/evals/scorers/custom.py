"""Your own scoring function, named ``module:function`` in the suite::

    scorers:
      - type: python
        function: my_checks:has_citation      # my_checks.py on sys.path (or a package)

The function is called as ``function(answer_text, expected, variables)`` and returns a
bool (pass/fail), a number in [0, 1], or a dict ``{"value": …, "passed": …, "detail":
…}`` (any subset; ``value`` defaults from ``passed``). It may be ``async def``. It is
imported once, when the suite is loaded; a target that cannot be imported is a
ConfigError naming it. An exception inside the function scores 0 with the exception as
the detail instead of stopping the run. Keep synchronous functions fast: they run on
the event loop.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator

from ...errors import ConfigError
from ..scoring import Answer, Score, Scorer, ScorerParams, ScoringContext

__all__ = ["PythonScorer", "PythonScorerParams", "import_function"]


@functools.cache
def import_function(target: str) -> Callable[..., Any]:
    """The callable named by ``"package.module:function"`` (dotted attributes allowed)."""
    module_name, _, attr = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"python scorer: cannot import module {module_name!r} for {target!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ConfigError(f"python scorer: {target!r}: {module_name} has no {attr!r}.")
        found = getattr(found, part)
    if not callable(found):
        raise ConfigError(f"python scorer: {target!r} is not callable.")
    return found  # type: ignore[no-any-return]


class PythonScorerParams(ScorerParams):
    #: ``"module:function"``.
    function: str
    #: Pass when a numeric result reaches this (default: numbers set no pass/fail).
    threshold: float | None = Field(None, ge=0, le=1)

    @field_validator("function")
    @classmethod
    def _target(cls, value: str) -> str:
        module, sep, attr = value.partition(":")
        if not (sep and module.strip() and attr.strip()):
            raise ValueError(f"{value!r}: use 'module:function'")
        return value.strip()


def _unit(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if not math.isnan(value) and 0.0 <= value <= 1.0 else None


class PythonScorer(Scorer):
    """Calls a user function (see the module docstring for its contract)."""

    type = "python"
    Params = PythonScorerParams
    params: PythonScorerParams

    def __init__(self, params: ScorerParams) -> None:
        super().__init__(params)
        self.function = import_function(self.params.function)

    def _convert(self, result: Any) -> Score:
        target = self.params.function
        threshold = self.params.threshold
        if isinstance(result, Score):
            return result
        if isinstance(result, bool):
            return Score.binary(result, f"{target} returned {result}")
        if isinstance(result, int | float):
            value = _unit(result)
            if value is None:
                return Score(0.0, False, False, f"{target} returned {result!r}, not in [0, 1]")
            passed = None if threshold is None else value >= threshold
            return Score(value, passed, False, f"{target} returned {value:g}")
        if isinstance(result, dict):
            unknown = set(result) - {"value", "passed", "detail"}
            passed = result.get("passed")
            raw = result.get("value", None if passed is None else float(bool(passed)))
            value = _unit(raw)
            if unknown or value is None or not isinstance(passed, bool | None):
                return Score(
                    0.0,
                    False,
                    False,
                    f"{target} returned an invalid dict {result!r:.80}"
                    " (want value in [0, 1], passed bool, detail)",
                )
            if passed is None and threshold is not None:
                passed = value >= threshold
            detail = result.get("detail")
            return Score(value, passed, False, None if detail is None else str(detail))
        return Score(
            0.0,
            False,
            False,
            f"{target} returned {type(result).__name__}, not a bool, a number or a dict",
        )

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        try:
            result = self.function(answer.text, expected, variables)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            return Score(
                0.0,
                False,
                False,
                f"{self.params.function} raised {type(exc).__name__}: {exc}",
                {"error": type(exc).__name__},
            )
        return self._convert(result)
