"""Safe boolean expressions over 'device.tag' names, for machine-state rules.

Integrators write `plc.running == 1 and not plc.estop`; it is checked once at load (only names,
numbers, strings, comparisons, arithmetic and and/or/not; never calls or attribute chains) and
evaluated by simpleeval, so YAML can never run Python.

Arithmetic that leaves the finite numbers (an overflow to infinity, infinity minus infinity) raises
ArithmeticError, like a division by zero does: the rule cannot be evaluated on these values, which
callers treat as unknown, never as true or false.
"""

from __future__ import annotations

__all__ = ["Expression", "ExpressionError"]

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

from simpleeval import DEFAULT_OPERATORS, SimpleEval

from edge_agent.samples import Value

_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.BitAnd,
    ast.BitOr,
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.Load,
    ast.Attribute,
    ast.Name,
)


_CONSTRUCTS = {
    "Call": "a function call",
    "Subscript": "indexing with [ ]",
    "Lambda": "a lambda",
    "IfExp": "'x if c else y'",
    "NamedExpr": "':='",
    "Dict": "a dictionary",
    "Set": "a set",
    "ListComp": "a comprehension",
    "GeneratorExp": "a comprehension",
    "Starred": "'*'",
    "Pow": "'**'",
    "FloorDiv": "'//'",
}


def _finite_result(operator: Callable[[Any, Any], Any], symbol: str) -> Callable[[Any, Any], Any]:
    def checked(left: Any, right: Any) -> Any:
        result = operator(left, right)
        if isinstance(result, float) and not math.isfinite(result):
            raise ArithmeticError(f"{left!r} {symbol} {right!r} is {result}, not a finite number")
        return result

    return checked


_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_OPERATORS = {
    **DEFAULT_OPERATORS,
    **{op: _finite_result(DEFAULT_OPERATORS[op], symbol) for op, symbol in _ARITHMETIC.items()},
}


class ExpressionError(ValueError):
    """The text is not an expression this agent accepts; the message says why."""


class Expression:
    """A parsed rule; `refs` lists the 'device.tag' names it reads."""

    __slots__ = ("_evaluator", "_tree", "refs", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(
                f"not a valid expression: {exc.msg} at column {exc.offset}"
            ) from None
        self.refs = frozenset(_check(tree))
        self._tree = tree.body
        self._evaluator = SimpleEval(operators=_OPERATORS, functions={})

    def evaluate(self, values: Mapping[str, Mapping[str, Value]]) -> Value:
        """Evaluate over current values, `values[device][tag]`; every ref must be present.

        Raises ArithmeticError when a number on the way or the result is NaN or infinite."""
        self._evaluator.names = values
        result = self._evaluator.eval(self.text, previously_parsed=self._tree)
        if isinstance(result, float) and not math.isfinite(result):
            raise ArithmeticError(f"{self.text} is {result}, not a finite number")
        return result


def _check(tree: ast.AST) -> set[str]:
    refs: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            what = _CONSTRUCTS.get(type(node).__name__, f"'{type(node).__name__}'")
            raise ExpressionError(
                f"{what} is not allowed in a rule; use tag names (device.tag), numbers, "
                "comparisons (== != < <= > >= in) and and / or / not"
            )
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, float)
            and not math.isfinite(node.value)
        ):
            raise ExpressionError(
                f"{node.value} is not a finite number; write a number such as 1e9"
            )
        if isinstance(node, ast.Name) and not _is_attribute_base(tree, node):
            raise ExpressionError(f"'{node.id}' is not a tag: write it as device.tag")
        if isinstance(node, ast.Attribute):
            if not isinstance(node.value, ast.Name):
                raise ExpressionError("a tag is written device.tag, with exactly one dot")
            refs.add(f"{node.value.id}.{node.attr}")
    if not refs:
        raise ExpressionError("the expression reads no tag")
    return refs


def _is_attribute_base(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Attribute) and n.value is name for n in ast.walk(tree))
