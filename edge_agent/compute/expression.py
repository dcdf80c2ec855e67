"""Safe boolean expressions over 'device.tag' names, for machine-state rules.

Integrators write `plc.running == 1 and not plc.estop`; it is checked once at load (only names,
numbers, strings, comparisons, arithmetic and and/or/not; never calls or attribute chains) and
evaluated by simpleeval, so YAML can never run Python. A tag is read as `values[device][tag]`, never
as an attribute, so tags named `values`, `keys` or `get` read their value, not a method of a dict.

A rule is at most MAX_RULE_CHARS characters and nests at most MAX_RULE_DEPTH levels (a chain of
`+` nests one level per term); simpleeval evaluates recursively, and a deeper rule would end in a
RecursionError at every evaluation instead of an error at load. Names starting with `_` are refused.

Arithmetic that leaves the finite numbers (an overflow to infinity, infinity minus infinity) raises
ArithmeticError, like a division by zero does: the rule cannot be evaluated on these values, which
callers treat as unknown, never as true or false.
"""

from __future__ import annotations

__all__ = ["MAX_RULE_CHARS", "MAX_RULE_DEPTH", "Expression", "ExpressionError"]

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

from simpleeval import DEFAULT_OPERATORS, SimpleEval

from edge_agent.samples import Value

# Long enough for any rule people write (a fault rule over twenty bits is some 500 characters).
MAX_RULE_CHARS = 1000
# simpleeval takes two Python frames per level: 32 levels stay far below the recursion limit, on
# top of whatever stack the caller has. `a + b + ... > 0` with 30 terms still fits.
MAX_RULE_DEPTH = 32

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


class _TagEvaluator(SimpleEval):
    """simpleeval reading `device.tag` as `names[device][tag]`.

    simpleeval's own attribute access tries `getattr` first, so on a dict of values `press1.values`
    was the dict's `values` method (never equal to 1) and `press1.format` was refused.
    """

    def __init__(self) -> None:
        super().__init__(operators=_OPERATORS, functions={})
        self.nodes[ast.Attribute] = self._read_tag

    def _read_tag(self, node: ast.Attribute) -> Value:
        device = node.value
        assert isinstance(device, ast.Name)  # _check allows nothing else
        return self.names[device.id][node.attr]


class Expression:
    """A parsed rule; `refs` lists the 'device.tag' names it reads."""

    __slots__ = ("_evaluator", "_tree", "refs", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_RULE_CHARS:
            raise ExpressionError(
                f"the rule is {len(text)} characters long; at most {MAX_RULE_CHARS}: "
                "split it, or compute the value in the PLC"
            )
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(
                f"not a valid expression: {exc.msg} at column {exc.offset}"
            ) from None
        except (RecursionError, MemoryError):  # the parser's own limits, if any remain
            raise ExpressionError(f"the rule nests deeper than {MAX_RULE_DEPTH} levels") from None
        _check_depth(tree.body)
        self.refs = frozenset(_check(tree))
        self._tree = tree.body
        self._evaluator = _TagEvaluator()

    def evaluate(self, values: Mapping[str, Mapping[str, Value]]) -> Value:
        """Evaluate over current values, `values[device][tag]`; every ref must be present.

        Raises ArithmeticError when a number on the way or the result is NaN or infinite."""
        self._evaluator.names = values
        result = self._evaluator.eval(self.text, previously_parsed=self._tree)
        if isinstance(result, float) and not math.isfinite(result):
            raise ArithmeticError(f"{self.text} is {result}, not a finite number")
        return result


def _check_depth(root: ast.expr) -> None:
    """Refuse a rule nested deeper than MAX_RULE_DEPTH expression levels (without recursing)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_RULE_DEPTH:
            raise ExpressionError(
                f"the rule nests deeper than {MAX_RULE_DEPTH} levels (each 'not', sign and "
                "operator of a chain such as a + b + c adds one); split it"
            )
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.expr)
        )


def _check(tree: ast.AST) -> set[str]:
    refs: set[str] = set()
    bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
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
        if isinstance(node, ast.Name) and id(node) not in bases:
            raise ExpressionError(f"'{node.id}' is not a tag: write it as device.tag")
        if isinstance(node, ast.Attribute):
            if not isinstance(node.value, ast.Name):
                raise ExpressionError("a tag is written device.tag, with exactly one dot")
            ref = f"{node.value.id}.{node.attr}"
            if node.value.id.startswith("_") or node.attr.startswith("_"):
                raise ExpressionError(
                    f"'{ref}': names starting with '_' are not allowed in a rule; rename the "
                    "device or tag"
                )
            refs.add(ref)
    if not refs:
        raise ExpressionError("the expression reads no tag")
    return refs
