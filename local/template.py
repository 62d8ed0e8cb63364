"""``template.yaml`` as the local tools read it: the decoded document and its intrinsic functions."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

Template = dict[str, Any]

NO_VALUE = object()
"""What ``Ref: AWS::NoValue`` resolves to: the enclosing key or list item is dropped."""


class TemplateError(ValueError):
    """The template uses something the local emulation cannot reproduce."""


def load_template(path: str | os.PathLike[str] = TEMPLATE_PATH) -> Template:
    """The template as plain dicts, lists and strings, short-form tags as CloudFormation sees them
    (``!Ref X`` is ``{"Ref": "X"}``). Each call returns a new copy: callers may edit it."""
    resolved = Path(path).resolve()
    document: Template = json.loads(_decoded_json(str(resolved), resolved.stat().st_mtime_ns))
    return document


@functools.lru_cache(maxsize=8)
def _decoded_json(path: str, mtime_ns: int) -> str:
    """Decoding takes cfn-lint a while; the JSON text of the result is cached until the file changes."""
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]  # noqa: PLC0415 (slow import)

    return json.dumps(cfn_yaml.load(path))


def text(value: Any) -> str:
    """A scalar as CloudFormation passes it around (booleans lower case, numbers as strings)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def parameter_values(template: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The value of every parameter (each has a default), as CloudFormation resolves ``Ref`` to it: a
    list for a ``CommaDelimitedList``, a string for anything else (``Number`` included)."""
    values: dict[str, Any] = {}
    for name, declaration in (template.get("Parameters") or {}).items():
        value = given[name] if name in given else declaration["Default"]
        if declaration.get("Type") == "CommaDelimitedList" and not isinstance(value, list):
            value = [part.strip() for part in text(value).split(",")]
        values[name] = [text(item) for item in value] if isinstance(value, list) else text(value)
    return values


class Resolver:
    """Evaluates the intrinsic functions a table's properties may use before anything is deployed:
    ``Ref`` to parameters and pseudo parameters, conditions and ``Fn::If``."""

    def __init__(
        self, template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None, *, stack_name: str
    ) -> None:
        self.template = template
        self.parameters = parameter_values(template, parameters or {})
        self.pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::StackName": stack_name}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        raise TemplateError(f"Ref {name}: only parameters and pseudo parameters can be resolved locally")

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return self.evaluate(conditions[name])

    def evaluate(self, expression: Any) -> bool:
        if isinstance(expression, Mapping) and len(expression) == 1:
            ((function, args),) = expression.items()
            if function == "Fn::Equals":
                left, right = (text(self.resolve(arg)) for arg in args)
                return left == right
            if function == "Fn::Not":
                return not self.evaluate(args[0])
        raise TemplateError(f"cannot evaluate condition {expression!r}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((function, args),) = value.items()
            if function == "Ref":
                return self.ref(str(args))
            if function == "Fn::If":
                name, when_true, when_false = args
                return self.resolve(when_true if self.condition(str(name)) else when_false)
            if str(function).startswith("Fn::"):
                raise TemplateError(f"{function} cannot be resolved without a deployed stack")
        resolved = {str(key): self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}
