"""Argo's template language, the part the project's workflows use.

`{{workflow.parameters.x}}`, `{{inputs.parameters.x}}`, `{{tasks.t.outputs.result}}`,
`{{tasks.t.outputs.parameters.p}}`, `{{item}}` / `{{item.field}}`, and expression tags
`{{=jsonpath(<ref>, '$.a.b')}}`; `when` conditions with ==, !=, <, >, &&, || and !.
A reference that cannot be resolved is an error naming it, never an empty string: a silently
blank parameter would run a step on the wrong input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from landstack.pipelines.runner.errors import WorkflowDefinitionError

_TAG = re.compile(r"\{\{\s*(=?)(.*?)\s*\}\}", re.S)
_JSONPATH = re.compile(r"^jsonpath\(\s*(.+?)\s*,\s*'(\$[^']*)'\s*\)$", re.S)
_INDEX = re.compile(r"\[['\"]([^'\"]+)['\"]\]")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _lookup(ref: str, scope: Mapping[str, Any]) -> Any:
    # tasks['a-b'].outputs.result and tasks.a-b.outputs.result both name the task "a-b"
    dotted = _INDEX.sub(lambda m: "." + m.group(1), ref.strip())
    if dotted in scope:
        return scope[dotted]
    if dotted.startswith("item.") and "item" in scope:
        value: Any = scope["item"]
        for part in dotted.split(".")[1:]:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, Mapping) or part not in value:
                raise WorkflowDefinitionError(f"{{{{{ref}}}}}: the item has no field {part!r}")
            value = value[part]
        return value
    raise WorkflowDefinitionError(
        f"{{{{{ref}}}}} cannot be resolved here; known: {', '.join(sorted(scope)) or 'nothing'}"
    )


def jsonpath(document: Any, path: str) -> Any:
    """The `$.a.b[0]` subset of JSONPath that the workflows use."""
    value = json.loads(document) if isinstance(document, str) else document
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:]):
        key, index = part
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError) as e:
            raise WorkflowDefinitionError(f"jsonpath {path!r} does not match {document!r}") from e
    return value


def _expression(body: str, scope: Mapping[str, Any]) -> Any:
    m = _JSONPATH.match(body)
    if m:
        return jsonpath(_lookup(m.group(1), scope), m.group(2))
    return _lookup(body, scope)


def substitute(text: str, scope: Mapping[str, Any]) -> str:
    """Replace every `{{...}}` tag in `text` with its value from `scope`."""

    def _one(m: re.Match[str]) -> str:
        value = _expression(m.group(2), scope) if m.group(1) else _lookup(m.group(2), scope)
        return _as_text(value)

    return _TAG.sub(_one, text)


def substitute_all(value: Any, scope: Mapping[str, Any]) -> Any:
    """`substitute` applied to every string inside a JSON-like structure."""
    if isinstance(value, str):
        return substitute(value, scope)
    if isinstance(value, list):
        return [substitute_all(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: substitute_all(v, scope) for k, v in value.items()}
    return value


_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|'[^']*'|\"[^\"]*\"|[^\s()!=<>&|]+)")


def evaluate_when(condition: str) -> bool:
    """Evaluate an already substituted `when` condition (govaluate's boolean subset)."""
    tokens = [t for t in _TOKEN.findall(condition) if t]
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise WorkflowDefinitionError(f"when condition {condition!r} ends too early")
        pos += 1
        return tokens[pos - 1]

    def atom() -> Any:
        tok = take()
        if tok == "(":
            value = disjunction()
            if take() != ")":
                raise WorkflowDefinitionError(f"when condition {condition!r}: unbalanced parentheses")
            return value
        if tok == "!":
            return not _truthy(atom())
        if tok[0] in "'\"":
            return tok[1:-1]
        if tok in ("true", "false"):
            return tok == "true"
        try:
            return float(tok)
        except ValueError:
            return tok

    def comparison() -> Any:
        left = atom()
        if peek() in ("==", "!=", "<", ">", "<=", ">="):
            op, right = take(), atom()
            if op == "==":
                return left == right
            if op == "!=":
                return left != right
            if not (isinstance(left, float) and isinstance(right, float)):
                raise WorkflowDefinitionError(f"when condition {condition!r}: {op} needs numbers")
            return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
        return left

    def conjunction() -> Any:
        value = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            value = _truthy(value) and _truthy(right)
        return value

    def disjunction() -> Any:
        value = conjunction()
        while peek() == "||":
            take()
            right = conjunction()
            value = _truthy(value) or _truthy(right)
        return value

    result = disjunction()
    if pos != len(tokens):
        raise WorkflowDefinitionError(f"when condition {condition!r}: unexpected {tokens[pos]!r}")
    return _truthy(result)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)
