"""Safe boolean expressions over 'device.tag' names, for machine-state rules.

Integrators write `plc.running == 1 and not plc.estop`; it is checked once at load (only names,
numbers, strings, comparisons, arithmetic and and/or/not; never calls or attribute chains) and
evaluated by simpleeval, so YAML can never run Python.
"""

from __future__ import annotations

__all__ = ["Expression", "ExpressionError"]

import ast
from collections.abc import Mapping

from simpleeval import SimpleEval

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
        self._evaluator = SimpleEval(functions={})

    def evaluate(self, values: Mapping[str, Mapping[str, Value]]) -> Value:
        """Evaluate over current values, `values[device][tag]`; every ref must be present."""
        self._evaluator.names = values
        return self._evaluator.eval(self.text, previously_parsed=self._tree)


def _check(tree: ast.AST) -> set[str]:
    refs: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            what = _CONSTRUCTS.get(type(node).__name__, f"'{type(node).__name__}'")
            raise ExpressionError(
                f"{what} is not allowed in a rule; use tag names (device.tag), numbers, "
                "comparisons (== != < <= > >= in) and and / or / not"
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
