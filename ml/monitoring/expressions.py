"""A small, safe evaluator for alert conditions such as 'accuracy < baseline_accuracy - 0.05'.

Conditions come from configuration, so they are never passed to eval: they are parsed with
ast, every node is checked against a short whitelist (numbers, known names, + - * /,
comparisons, and/or/not), and the tree is compiled into plain Python closures. Anything else
(calls, attributes, subscripts, lambdas, strings, powers, unknown names) is rejected when the
rule is loaded, with the reason.
"""
from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from typing import Callable, Collection, FrozenSet, Mapping

MAX_CONDITION_LENGTH = 500
MAX_NODES = 200
MAX_LITERAL = 1e12

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: lambda a, b: a / b if b != 0 else math.nan}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
            ast.Mod: "%", ast.FloorDiv: "//", ast.BitAnd: "&", ast.BitOr: "|",
            ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>", ast.MatMult: "@"}


class ExpressionError(ValueError):
    """A condition that is not in the supported language; the message says what and where."""


@dataclass(frozen=True)
class Condition:
    """A parsed condition: its source, the names it reads, and a compiled evaluator."""

    source: str
    names: FrozenSet[str]
    _evaluate: Callable[[Mapping[str, float]], object]
    tree: ast.Expression

    def evaluate(self, variables: Mapping[str, float]) -> bool:
        """True when the condition holds; every name it reads must be in variables."""
        missing = sorted(self.names - set(variables))
        if missing:
            raise KeyError(f"condition {self.source!r} needs values for {missing}")
        return bool(self._evaluate(variables))

    def evaluate_operand(self, node: ast.AST, variables: Mapping[str, float]) -> float:
        """Value of one sub-expression of this condition (used to report thresholds)."""
        return float(_compile(node)(variables))


def parse_condition(source: str, allowed_names: Collection[str]) -> Condition:
    """Parse and check a boolean condition; raise ExpressionError if anything is not allowed."""
    if not isinstance(source, str):
        raise ExpressionError(f"condition must be a string, got {type(source).__name__}")
    if not source.strip():
        raise ExpressionError("condition is empty")
    if len(source) > MAX_CONDITION_LENGTH:
        raise ExpressionError(f"condition is longer than {MAX_CONDITION_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as error:
        raise ExpressionError(f"condition {source!r} is not a valid expression: {error}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"condition {source!r} is too complex (over {MAX_NODES} nodes)")
    allowed = frozenset(allowed_names)
    for node in nodes:
        _check_node(node, source, allowed)
    if not isinstance(tree.body, (ast.Compare, ast.BoolOp)) and not (
            isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)):
        raise ExpressionError(f"condition {source!r} must be a comparison such as "
                              "'psi_score > 0.25' (optionally joined with and/or/not)")
    names = frozenset(n.id for n in nodes if isinstance(n, ast.Name))
    return Condition(source=source, names=names, _evaluate=_compile(tree.body), tree=tree)


def _check_node(node: ast.AST, source: str, allowed: FrozenSet[str]) -> None:
    if isinstance(node, ast.Name):
        if node.id not in allowed:
            raise ExpressionError(f"unknown name {node.id!r} in condition {source!r}; "
                                  f"known names: {sorted(allowed)}")
        return
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"only numbers are allowed as literals in condition "
                                  f"{source!r}, got {value!r}")
        if not math.isfinite(value) or abs(value) > MAX_LITERAL:
            raise ExpressionError(f"number {value!r} in condition {source!r} is out of range "
                                  f"(|x| <= {MAX_LITERAL:g})")
        return
    if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
        symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
        raise ExpressionError(f"operator {symbol!r} is not allowed in condition {source!r}; "
                              "use + - * / and comparisons")
    if isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
        raise ExpressionError(f"only < <= > >= == != comparisons are allowed in {source!r}")
    if isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not,
                         ast.USub, ast.UAdd, ast.BinOp, ast.Compare, ast.Load)
                  + tuple(_BINARY) + tuple(_COMPARE)):
        return
    raise ExpressionError(f"{_describe(node)} is not allowed in condition {source!r}; "
                          "conditions may use numbers, known names, + - * /, comparisons "
                          "and and/or/not")


def _describe(node: ast.AST) -> str:
    names = {ast.Call: "a function call", ast.Attribute: "attribute access",
             ast.Subscript: "subscripting", ast.Lambda: "a lambda",
             ast.IfExp: "a conditional expression", ast.NamedExpr: "assignment (:=)",
             ast.JoinedStr: "an f-string", ast.Starred: "unpacking"}
    for kind, text in names.items():
        if isinstance(node, kind):
            return text
    return f"{type(node).__name__} syntax"


def _compile(node: ast.AST) -> Callable[[Mapping[str, float]], object]:
    if isinstance(node, ast.Constant):
        value = float(node.value)
        return lambda variables: value
    if isinstance(node, ast.Name):
        name = node.id
        return lambda variables: float(variables[name])
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda variables: not operand(variables)
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return lambda variables: sign * operand(variables)
    if isinstance(node, ast.BinOp):
        left, right, apply = _compile(node.left), _compile(node.right), _BINARY[type(node.op)]
        return lambda variables: apply(left(variables), right(variables))
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda variables: all(part(variables) for part in parts)
        return lambda variables: any(part(variables) for part in parts)
    if isinstance(node, ast.Compare):
        operands = [_compile(node.left)] + [_compile(c) for c in node.comparators]
        tests = [_COMPARE[type(op)] for op in node.ops]

        def compare(variables):
            values = [operand(variables) for operand in operands]
            return all(test(a, b) for test, a, b in zip(tests, values, values[1:]))
        return compare
    raise ExpressionError(f"{_describe(node)} cannot be evaluated")
