"""CloudFormation Conditions, evaluated when a template is read.

A condition can only depend on parameters (and other conditions), so its value is fixed once the
parameters are: ``load_template`` evaluates every condition of a stack, leaves out the resources
whose ``Condition`` is false and replaces each ``Fn::If`` by the branch it picks. What the rest of the
runtime sees is what CloudFormation would create for those parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

NO_VALUE = {"Ref": "AWS::NoValue"}


class ConditionError(ValueError):
    pass


class _Dropped:
    """What ``apply`` returns for ``AWS::NoValue``: the property or list item is left out."""


DROPPED = _Dropped()


class Conditions:
    """The ``Conditions`` section of one stack, evaluated against resolved parameter values.

    ``resolve`` turns the arguments of ``Fn::Equals`` (``!Ref Stage``, literals, ``!Sub`` ...) into
    values; the loader gives it a resolver over the root's parameters.
    """

    def __init__(self, definitions: Mapping[str, Any], resolve: Callable[[Any], Any], where: str) -> None:
        self._definitions = dict(definitions)
        self._resolve = resolve
        self._where = where
        self._values: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    def extended(self, definitions: Mapping[str, Any]) -> Conditions:
        """These conditions and ``definitions`` (a translated template may add its own)."""
        return Conditions({**self._definitions, **definitions}, self._resolve, self._where)

    def holds(self, name: str) -> bool:
        if name in self._values:
            return self._values[name]
        if name not in self._definitions:
            raise ConditionError(f"{self._where}: no condition named {name}")
        if name in self._evaluating:
            raise ConditionError(f"{self._where}: condition {name} refers to itself")
        self._evaluating.add(name)
        try:
            value = self.evaluate(self._definitions[name])
        finally:
            self._evaluating.discard(name)
        self._values[name] = value
        return value

    def evaluate(self, expr: Any) -> bool:
        if isinstance(expr, Mapping) and len(expr) == 1:
            ((key, arg),) = expr.items()
            if key == "Condition":
                return self.holds(str(arg))
            if key == "Fn::Equals":
                left, right = (self._resolve(a) for a in arg)
                return _text(left) == _text(right)
            if key == "Fn::Not":
                (inner,) = arg
                return not self.evaluate(inner)
            if key == "Fn::And":
                return all(self.evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(self.evaluate(a) for a in arg)
        raise ConditionError(f"{self._where}: not a condition expression: {expr!r}")

    def apply(self, value: Any) -> Any:
        """``value`` with each ``Fn::If`` replaced by its chosen branch; ``AWS::NoValue`` left out."""
        if isinstance(value, list):
            items = [self.apply(v) for v in value]
            return [v for v in items if v is not DROPPED]
        if not isinstance(value, Mapping):
            return value
        if value == NO_VALUE:
            return DROPPED
        if len(value) == 1 and "Fn::If" in value:
            name, when_true, when_false = value["Fn::If"]
            return self.apply(when_true if self.holds(str(name)) else when_false)
        out = {}
        for key, item in value.items():
            applied = self.apply(item)
            if applied is not DROPPED:
                out[key] = applied
        return out


def _text(value: Any) -> str:
    # CloudFormation compares the string forms (a Number parameter "1" equals "1").
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
