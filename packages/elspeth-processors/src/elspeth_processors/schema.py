"""The ``schema_validation`` processor: every row must satisfy a JSON Schema.

Validation is done by the `jsonschema <https://python-jsonschema.readthedocs.io>`_ package, imported
when the processor is built; it is not one of core's dependencies, so a run that uses this processor
without it fails before any row with ``pip install jsonschema`` in the message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elspeth import DeclaredPath, PluginError, inline

if TYPE_CHECKING:
    from elspeth import PluginContext

__all__ = ["SchemaValidation", "SchemaViolation"]

_MAX_REPORTED = 5


class SchemaViolation(ValueError):
    """A row does not satisfy the schema; the message names each failing field and rule."""


def _jsonschema() -> Any:
    try:
        import jsonschema  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise PluginError(
            "schema_validation needs the jsonschema package, which is not installed: pip install jsonschema"
        ) from None
    return jsonschema


def _coerce(value: Any, schema: Any) -> Any:
    """``value`` converted to the schema's declared scalar type when it is a string that reads as one.

    CSV cells are always strings; ``"42"`` against ``{"type": "integer"}`` becomes ``42``.
    """
    if not isinstance(value, str) or not isinstance(schema, Mapping):
        return value
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared]
    if "string" in types:
        return value
    text = value.strip()
    for kind in types:
        if kind == "integer":
            try:
                return int(text)
            except ValueError:
                pass
        elif kind == "number":
            try:
                number = float(text)
            except ValueError:
                continue
            if number == number and number not in (float("inf"), float("-inf")):  # not NaN nor infinite
                return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
        elif kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        elif kind == "null" and text == "":
            return None
    return value


def _field(error: Any) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [p for p in error.validator_value if p not in error.instance]
        if missing:
            path = ".".join(filter(None, [path, str(missing[0])]))
    return path


class SchemaValidation:
    """Checks every row against a JSON Schema; a row that fails is recorded as failed, naming field and rule."""

    name = "schema_validation"

    class Options(BaseModel):
        """Options of ``schema_validation``."""

        model_config = ConfigDict(extra="forbid")

        schema_: dict[str, Any] | None = Field(
            None, alias="schema", description="the JSON Schema, inline (give this or schema_path)"
        )
        schema_path: str | None = Field(
            None, description="a JSON (or YAML) file holding the schema, relative to the settings file"
        )
        coerce: bool = Field(
            True,
            description="convert strings (as CSV cells are) to the integer, number, boolean or null a property "
            "declares before validating; the row continues with the converted values",
        )

        @model_validator(mode="after")
        def _one_schema(self) -> SchemaValidation.Options:
            if (self.schema_ is None) == (self.schema_path is None):
                raise ValueError("give exactly one of `schema` (inline) and `schema_path`")
            return self

    def __init__(self, options: Options) -> None:
        self.options = options
        self._jsonschema = _jsonschema()
        self._validator: Any = None
        self.checked = 0
        self.failed = 0
        if options.schema_ is not None:
            self._validator = self._build(options.schema_, "options.schema")

    def _build(self, schema: Any, where: str) -> Any:
        if not isinstance(schema, Mapping):
            raise PluginError(f"schema_validation: {where} must be a JSON object, not {type(schema).__name__}")
        cls = self._jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except self._jsonschema.SchemaError as exc:
            at = "/".join(str(p) for p in exc.absolute_path) or "top level"
            raise PluginError(f"schema_validation: {where} is not a valid JSON Schema ({at}): {exc.message}") from None
        return cls(schema, format_checker=cls.FORMAT_CHECKER)

    def input_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The schema file, when there is one: no output of the run may replace it."""
        path = self.options.schema_path
        return [DeclaredPath("schema_path", ctx.input_path(path))] if path is not None else []

    def open(self, ctx: PluginContext) -> None:
        """Read ``schema_path`` (relative to the settings file's folder)."""
        if self.options.schema_path is None:
            return
        path = ctx.input_path(self.options.schema_path)
        where = f"options.schema_path '{self.options.schema_path}'"
        if not path.is_file():
            raise PluginError(f"schema_validation: {where} does not exist (looked for {path})")
        self._validator = self._build(self._read(path, where), where)

    @staticmethod
    def _read(path: Path, where: str) -> Any:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise PluginError(f"schema_validation: {where} is not valid YAML: {exc}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PluginError(
                f"schema_validation: {where} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
            ) from None

    def _coerced(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        properties = self._validator.schema.get("properties")
        if not isinstance(properties, Mapping):
            return data
        updates = {k: _coerce(v, properties.get(k)) for k, v in data.items() if k in properties}
        changed = {k: v for k, v in updates.items() if v is not data[k]}
        return {**data, **changed} if changed else data

    @inline
    def process(self, data: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Return the row (with coerced values) if it satisfies the schema.

        Raises:
            SchemaViolation: naming every failing field and the schema rule it breaks (up to five).

        """
        if self._validator is None:
            raise RuntimeError("schema_validation was not opened: its schema_path has not been read")
        candidate = self._coerced(data) if self.options.coerce else data
        self.checked += 1
        errors = sorted(self._validator.iter_errors(dict(candidate)), key=lambda e: (list(map(str, e.path)), e.message))
        if not errors:
            return candidate if candidate is not data else None
        self.failed += 1
        parts = []
        for error in errors[:_MAX_REPORTED]:
            field = _field(error)
            place = f"field '{field}'" if field else "the row"
            parts.append(f"{place}: {error.message} (rule: {error.validator})")
        more = f"; and {len(errors) - _MAX_REPORTED} more" if len(errors) > _MAX_REPORTED else ""
        raise SchemaViolation("row does not match the schema: " + "; ".join(parts) + more)

    def summary(self) -> dict[str, Any]:
        """Rows checked and rows that failed."""
        return {"checked": self.checked, "failed": self.failed}
