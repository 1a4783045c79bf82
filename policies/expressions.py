"""Arithmetic over named series values for threshold rules: ``errors / requests``,
``(a + b) * 100``. Names, numbers, + - * / and parentheses; nothing else is evaluated."""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def parse_expression(text: str, names: set[str]) -> ast.expr:
    """The checked syntax tree of ``text``; ValueError names what is not allowed."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse expr {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"expr {text!r} uses {node.id!r}, which is not one of the series "
                                 f"({', '.join(sorted(names))})")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise ValueError(f"expr {text!r}: only numbers and series names are allowed")
        elif not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load, *_OPERATORS)):
            raise ValueError(f"expr {text!r}: only + - * / and parentheses are allowed")
    return tree


def evaluate(tree: ast.expr, values: Mapping[str, float | None]) -> float | None:
    """The value, or None when a series has no value or a division is by zero."""
    if isinstance(tree, ast.Constant):
        return float(tree.value)
    if isinstance(tree, ast.Name):
        return values.get(tree.id)
    if isinstance(tree, ast.UnaryOp):
        inner = evaluate(tree.operand, values)
        return None if inner is None else (-inner if isinstance(tree.op, ast.USub) else inner)
    left, right = evaluate(tree.left, values), evaluate(tree.right, values)
    if left is None or right is None or (isinstance(tree.op, ast.Div) and right == 0):
        return None
    return _OPERATORS[type(tree.op)](left, right)
