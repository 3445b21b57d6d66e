"""Tools from an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML): one per operation, its
arguments a self-contained JSON Schema (local `$ref`s resolved, cycles cut), writes marked as
needing the customer's confirmation.

Parameters that name the customer (path, query and top-level JSON body fields; see
`CUSTOMER_ID_NAMES` / `CUSTOMER_EMAIL_NAMES`, matched ignoring case and separators) are bound to
the verified identity: they leave the model's schema and the request carries
`{customer.external_id}` / `{customer.email}` instead, so the model never chooses whose data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METHODS = ("get", "post", "put", "patch", "delete")
READS = ("get",)
MAX_NAME = 64
MAX_DESCRIPTION = 1000
MAX_SCHEMA_BYTES = 64 * 1024
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")
_PARAM_OK = re.compile(r"^[A-Za-z0-9_\-]+$")
# OpenAPI keywords that are not JSON Schema (or mean nothing to the model).
_DROP = frozenset({"example", "examples", "xml", "externalDocs", "discriminator", "deprecated", "x-github"})


# Names (lower case, without `_`, `-`, `.` or spaces) bound to the customer's verified identity.
CUSTOMER_ID_NAMES = frozenset(
    {
        "customer",
        "customerid",
        "customerexternalid",
        "externalcustomerid",
        "externalid",
        "customernumber",
        "customerref",
        "contactid",
        "userid",
        "accountid",
        "memberid",
        "shopperid",
        "buyerid",
    }
)
CUSTOMER_EMAIL_NAMES = frozenset(
    {"email", "emailaddress", "customeremail", "customeremailaddress", "contactemail", "useremail"}
)
_SEPARATORS = re.compile(r"[\s_.\-]+")


def customer_field(name: str) -> str | None:
    """The identity field a parameter of this name is bound to (`customer.external_id` or
    `customer.email`), or None when the model may fill it."""
    key = _SEPARATORS.sub("", name.lower())
    if key in CUSTOMER_ID_NAMES:
        return "customer.external_id"
    if key in CUSTOMER_EMAIL_NAMES:
        return "customer.email"
    return None


class OpenAPIError(Exception):
    pass


@dataclass
class ToolDraft:
    operation: str
    name: str
    description: str
    method: str
    path: str
    parameters: dict[str, Any]
    query_map: dict[str, str]
    body_map: dict[str, str]
    requires_confirmation: bool
    confirmation_template: str
    # parameter name -> identity field filled instead of the model (e.g. customer.external_id)
    bound: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportPlan:
    title: str
    base_url: str
    tools: list[ToolDraft] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def document_load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise OpenAPIError(f"{path} is neither valid JSON nor YAML: {exc}") from None
    if not isinstance(doc, dict) or not (
        str(doc.get("openapi", "")).startswith("3") or doc.get("swagger") == "2.0"
    ):
        raise OpenAPIError(
            f"{path} is not an OpenAPI 3.x or Swagger 2.0 document (no `openapi: 3.x` / `swagger: 2.0`)."
        )
    return doc


class Resolver:
    """Local `$ref`s inlined. A reference to a schema already being expanded is cut to a plain
    object; results without such cuts are cached, so shared schemas are expanded once."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.cache: dict[str, Any] = {}

    def pointer(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise OpenAPIError(f"Unresolvable $ref {ref}")
            node = node[part]
        return node

    def resolve(self, node: Any) -> Any:
        return self._resolve(node, ())[0]

    def _resolve(self, node: Any, stack: tuple[str, ...]) -> tuple[Any, frozenset[str]]:
        if isinstance(node, list):
            out, cuts = [], frozenset()
            for item in node:
                value, c = self._resolve(item, stack)
                out.append(value)
                cuts |= c
            return out, cuts
        if not isinstance(node, dict):
            return node, frozenset()
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                return {"description": f"(external reference {ref} not resolved)"}, frozenset()
            if ref in stack:
                return {"type": "object", "description": f"(recursive {ref.rsplit('/', 1)[-1]})"}, frozenset(
                    {ref}
                )
            if ref in self.cache:
                return self.cache[ref], frozenset()
            value, cuts = self._resolve(self.pointer(ref), (*stack, ref))
            cuts -= {ref}
            if not cuts:
                self.cache[ref] = value
            return value, cuts
        out, cuts = {}, frozenset()
        for key, child in node.items():
            if key in _DROP or key.startswith("x-"):
                continue
            value, c = self._resolve(child, stack)
            out[key] = value
            cuts |= c
        return _json_schema(out), cuts


def _json_schema(node: dict[str, Any]) -> dict[str, Any]:
    # OpenAPI 3.0's `nullable` is `type: [T, "null"]` in JSON Schema.
    if node.pop("nullable", False) is True and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    return node


def tool_name(operation_id: str, method: str, path: str) -> str:
    raw = operation_id or f"{method}_{path}"
    return _NAME_BAD.sub("_", raw).strip("_")[:MAX_NAME] or "operation"


def _base_url(doc: dict[str, Any]) -> str:
    if doc.get("swagger") == "2.0":
        host = doc.get("host", "")
        scheme = (doc.get("schemes") or ["https"])[0]
        return f"{scheme}://{host}{doc.get('basePath', '')}" if host else ""
    servers = doc.get("servers") or [{}]
    return str(servers[0].get("url", ""))


def _describe(op: dict[str, Any]) -> str:
    parts = [op.get("summary", ""), op.get("description", "")]
    return "\n\n".join(p.strip() for p in parts if p and p.strip())[:MAX_DESCRIPTION]


def _operation(
    doc: dict[str, Any],
    resolver: Resolver,
    path: str,
    method: str,
    path_item: dict[str, Any],
    op: dict[str, Any],
) -> ToolDraft:
    """One tool draft; raises OpenAPIError with the reason when the operation cannot be a tool."""
    swagger = doc.get("swagger") == "2.0"
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*path_item.get("parameters", []), *op.get("parameters", [])]:
        param = resolver.resolve(raw)
        params[(param.get("name", ""), param.get("in", ""))] = param
    properties: dict[str, Any] = {}
    required: list[str] = []
    query_map: dict[str, str] = {}
    body_map: dict[str, str] = {}
    bound: dict[str, str] = {}
    body_schema: dict[str, Any] | None = None
    for (name, where), param in params.items():
        if where in ("header", "cookie"):
            if param.get("required"):
                raise OpenAPIError(f"needs the {where} parameter {name!r}, which tools cannot send")
            continue
        if where == "formData":
            raise OpenAPIError("form-data bodies are not supported")
        if where == "body":
            body_schema = param.get("schema") or {}
            continue
        if not _PARAM_OK.match(name):
            raise OpenAPIError(f"parameter name {name!r} cannot be a placeholder")
        bind = customer_field(name)
        if bind:  # the customer's identity, never an argument
            bound[name] = bind
            if where == "path":
                path = path.replace("{" + name + "}", "{" + bind + "}")
            elif where == "query":
                query_map[name] = "{" + bind + "}"
            continue
        if swagger:
            schema = {k: v for k, v in param.items() if k not in ("name", "in", "required", "description")}
        else:
            schema = dict(param.get("schema") or {"type": "string"})
        if param.get("description"):
            schema["description"] = str(param["description"])[:300]
        properties[name] = schema
        if param.get("required") or where == "path":
            required.append(name)
        if where == "query":
            query_map[name] = "{" + name + "}"
    if not swagger and "requestBody" in op:
        body = resolver.resolve(op["requestBody"])
        content = body.get("content", {})
        media = next((m for m in content if m == "application/json" or m.endswith("+json")), None)
        if media is None:
            if body.get("required"):
                raise OpenAPIError(
                    f"request body is {', '.join(content) or 'not JSON'}; only JSON is supported"
                )
        else:
            body_schema = content[media].get("schema") or {}
    if body_schema is not None:
        body_props = body_schema.get("properties") if body_schema.get("type", "object") == "object" else None
        if body_props:
            for name, schema in body_props.items():
                bind = customer_field(name)
                if bind:
                    bound[name] = bind
                    body_map[name] = "{" + bind + "}"
                    continue
                arg = name if name not in properties and _PARAM_OK.match(name) else f"body_{len(body_map)}"
                properties[arg] = schema
                body_map[name] = "{" + arg + "}"
            required += [n for n in body_schema.get("required", []) if n in body_map and n in properties]
        else:
            properties["body"] = body_schema
            body_map["*"] = "{body}"
    parameters = {"type": "object", "properties": properties, "required": sorted(set(required))}
    if len(json.dumps(parameters)) > MAX_SCHEMA_BYTES:
        raise OpenAPIError(f"its arguments' schema is larger than {MAX_SCHEMA_BYTES // 1024} KiB")
    summary = (op.get("summary") or f"{method.upper()} {path}").strip().rstrip(".")
    return ToolDraft(
        operation=op.get("operationId") or f"{method.upper()} {path}",
        name=tool_name(op.get("operationId", ""), method, path),
        description=_describe(op),
        method=method.upper(),
        path=path,
        parameters=parameters,
        query_map=query_map,
        body_map=body_map,
        requires_confirmation=method not in READS,
        confirmation_template=f"{summary[:200]}?",
        bound=bound,
    )


def import_plan(doc: dict[str, Any], *, operations: set[str] | None = None) -> ImportPlan:
    """The tools an OpenAPI document yields (all operations, or those named by operationId or tool name)."""
    resolver = Resolver(doc)
    plan = ImportPlan(title=str(doc.get("info", {}).get("title", "")), base_url=_base_url(doc))
    names: set[str] = set()
    found: set[str] = set()
    for path, path_item in (doc.get("paths") or {}).items():
        if not isinstance(path_item, dict):
            continue
        for method in METHODS:
            op = path_item.get(method)
            if not isinstance(op, dict):
                continue
            op_id = op.get("operationId") or ""
            name = tool_name(op_id, method, path)
            if operations is not None and op_id not in operations and name not in operations:
                continue
            found |= {op_id, name}
            try:
                draft = _operation(doc, resolver, path, method, path_item, op)
            except OpenAPIError as exc:
                plan.skipped.append({"operation": op_id or f"{method.upper()} {path}", "reason": str(exc)})
                continue
            base, n = draft.name, 2
            while draft.name in names:
                draft.name = f"{base[: MAX_NAME - 4]}_{n}"
                n += 1
            names.add(draft.name)
            plan.tools.append(draft)
    for missing in sorted((operations or set()) - found):
        plan.skipped.append({"operation": missing, "reason": "no such operation in the document"})
    return plan
