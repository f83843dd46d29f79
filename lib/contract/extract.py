"""Extracts Runway's request contract from the official `runwayml` SDK into
lib/contract/runway.json (run `python -m lib.contract.extract`).

The SDK's request types are the machine-readable contract: for each
task-creating endpoint, `runwayml/types/<endpoint>_create_params.py` holds a
union of TypedDicts, one per model (or a single TypedDict when the endpoint
has one model). This module turns them into plain JSON so the dashboard never
needs the SDK at run time; tests/test_contract.py regenerates the file from
the installed SDK and names every difference.

Which endpoints: a POST in `runwayml/resources/*.py` whose response the SDK
makes waitable (`create_waitable_resource`, i.e. it returns a task) and whose
params carry a `model`. The path is the POST's literal path.

How a field becomes a shape (see lib/contract/__init__.py for the format):
- `Required[...]` marks a required field (the modules use
  `from __future__ import annotations`, so `__required_keys__` is empty and
  only `get_type_hints(..., include_extras=True)` shows it);
- the JSON name is `PropertyInfo(alias=...)` inside `Annotated`, else the
  Python name;
- `Literal` is an enum, its values in source order (typing caches Literal
  aliases by set equality, so the evaluated order may be another field's);
- `Iterable`/`Sequence` is a list, a TypedDict an object, `Union` a union,
  `object` is any.
Media detection: a `str` is media when
- its docstring says it is "a HTTPS URL, Runway upload URI, or base64 data
  URI"; the kind is the one in its `data:<kind>/...` example (else the word
  image/video/audio in the docstring); or
- it is the bare-string branch of a union whose list branch holds objects
  with a media `uri` (the string is shorthand for that uri): the items' kind; or
- its JSON name names a kind (promptImage, referenceAudios): that kind.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import sys
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path

import typing_extensions as te

from lib.contract import KINDS, name_kind

CONTRACT_FILE = Path(__file__).with_name("runway.json")
_URI_DOC = re.compile(r"HTTPS URL|Runway upload URI|data URI", re.I)


def sdk_root() -> Path:
    import runwayml
    return Path(runwayml.__file__).parent


def sdk_version() -> str:
    import runwayml
    return runwayml.__version__


# ------------------------------------------------------------- endpoints

def task_endpoints(root: Path) -> dict[str, str]:
    """Params module stem -> POST path, for every POST that returns a task."""
    found: dict[str, str] = {}
    for path in sorted((root / "resources").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "_post" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            cast_to, body = keywords.get("cast_to"), keywords.get("body")
            waitable = cast_to is not None and any(
                isinstance(n, ast.Name) and n.id == "create_waitable_resource" for n in ast.walk(cast_to))
            params = [n.value.id for n in ast.walk(body) if isinstance(n, ast.Attribute)
                      and isinstance(n.value, ast.Name) and n.value.id.endswith("_create_params")] if body else []
            if waitable and params:
                found[params[0]] = node.args[0].value
    return found


# ------------------------------------------------------------- docstrings

def attribute_docs(module) -> dict[str, dict[str, str]]:
    """Class name -> attribute name -> the docstring under the attribute."""
    docs: dict[str, dict[str, str]] = {}
    for cls in ast.parse(Path(module.__file__).read_text()).body:
        if not isinstance(cls, ast.ClassDef):
            continue
        found = docs[cls.name] = {}
        for stmt, after in zip(cls.body, cls.body[1:] + [None]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                found[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


def literal_orders(module) -> dict[tuple[str, str], list[tuple]]:
    """(class, attribute) -> each Literal's values in source order."""
    orders: dict[tuple[str, str], list[tuple]] = {}
    for cls in ast.parse(Path(module.__file__).read_text()).body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                orders[(cls.name, stmt.target.id)] = [
                    tuple(ast.literal_eval(e) for e in (n.slice.elts if isinstance(n.slice, ast.Tuple)
                                                        else [n.slice]))
                    for n in ast.walk(stmt.annotation)
                    if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == "Literal"]
    return orders


# ------------------------------------------------------------- shapes

def doc_kind(doc: str) -> str | None:
    example = re.search(r"data:(image|video|audio)/", doc)
    if example:
        return example.group(1)
    words = [k for k in KINDS if re.search(rf"\b{k}s?\b", doc, re.I)]
    return words[0] if words else None


class Extractor:
    def __init__(self, module):
        self.module = module
        self.docs = attribute_docs(module)
        self.orders = literal_orders(module)

    def fields(self, td) -> dict:
        hints = typing.get_type_hints(td, include_extras=True)
        docs = self.docs.get(td.__name__, {})
        out = {}
        for py_name, hint in hints.items():
            required = False
            if typing.get_origin(hint) in (typing.Required, te.Required):
                required, hint = True, typing.get_args(hint)[0]
            json_name = py_name
            if typing.get_origin(hint) is typing.Annotated:
                for extra in hint.__metadata__:
                    json_name = getattr(extra, "alias", None) or json_name
                hint = typing.get_args(hint)[0]
            doc = docs.get(py_name, "")
            orders = self.orders.get((td.__name__, py_name), [])
            out[json_name] = {"required": required, "doc": doc,
                              "shape": self.shape(hint, json_name, doc, orders)}
        return out

    def shape(self, hint, name: str, doc: str, orders: list[tuple]) -> dict:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is str:
            if _URI_DOC.search(doc) and doc_kind(doc):
                return {"type": "media", "kind": doc_kind(doc)}
            if name_kind(name):
                return {"type": "media", "kind": name_kind(name)}
            return {"type": "string"}
        if hint is bool:
            return {"type": "bool"}
        if hint is int:
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if hint is object:
            return {"type": "any"}
        if origin in (typing.Literal, te.Literal):
            values = next((list(o) for o in orders if set(o) == set(args) and len(o) == len(args)), list(args))
            return {"type": "enum", "values": values}
        if origin in (Iterable, Sequence, list) or getattr(origin, "__name__", "") == "SequenceNotStr":
            return {"type": "list", "items": self.shape(args[0], name, doc, orders)}
        if origin is typing.Union:
            options = [self.shape(a, name, doc, orders) for a in args]
            item_kinds = {o["items"]["fields"]["uri"]["shape"].get("kind") for o in options
                          if o["type"] == "list" and o["items"]["type"] == "object"
                          and "uri" in o["items"]["fields"]} - {None}
            if len(item_kinds) == 1:
                options = [{"type": "media", "kind": item_kinds.pop()} if o == {"type": "string"} else o
                           for o in options]
            return {"type": "union", "options": options}
        if isinstance(hint, type) and te.is_typeddict(hint):
            return {"type": "object", "fields": self.fields(hint)}
        raise TypeError(f"{self.module.__name__}: no contract shape for {name}: {hint!r}")


def members(params) -> list:
    return list(typing.get_args(params)) if typing.get_origin(params) is typing.Union else [params]


def params_name(stem: str) -> str:
    return "".join(part.capitalize() for part in stem.split("_"))


def extract(root: Path | None = None) -> dict:
    root = root or sdk_root()
    endpoints: dict[str, dict] = {}
    for stem, path in sorted(task_endpoints(root).items()):
        module = importlib.import_module(f"runwayml.types.{stem}")
        name = params_name(stem)
        extractor = Extractor(module)
        models: dict[str, dict] = {}
        for member in members(getattr(module, name)):
            fields = extractor.fields(member)
            model = fields.get("model")
            if model is None:
                continue
            for model_id in model["shape"]["values"]:
                per_model = dict(fields, model=dict(model, shape={"type": "enum", "values": [model_id]}))
                models[model_id] = {"fields": per_model}
        if models:
            endpoints[path] = {"params": name, "models": models}
    return {"source": f"runwayml {sdk_version()}", "endpoints": endpoints}


def diff(old: dict, new: dict) -> list[str]:
    """What changed from `old` to `new`, one line per endpoint/model/field/value.

    Enum values are compared as sets, then for order.
    """
    lines = []
    if old.get("source") != new.get("source"):
        lines.append(f"source: {old.get('source')} -> {new.get('source')}")
    _diff_keyed("", old["endpoints"], new["endpoints"], _diff_endpoint, lines)
    return lines


def _diff_keyed(where: str, old: dict, new: dict, inner, lines: list[str]) -> None:
    for key in sorted(old.keys() - new.keys()):
        lines.append(f"{where}{key}: removed")
    for key in sorted(new.keys() - old.keys()):
        lines.append(f"{where}{key}: added")
    for key in sorted(old.keys() & new.keys()):
        inner(f"{where}{key}", old[key], new[key], lines)


def _diff_endpoint(where: str, old: dict, new: dict, lines: list[str]) -> None:
    if old["params"] != new["params"]:
        lines.append(f"{where}: params {old['params']} -> {new['params']}")
    _diff_keyed(f"{where} model ", old["models"], new["models"],
                lambda w, o, n, ls: _diff_fields(w, o["fields"], n["fields"], ls), lines)


def _diff_fields(where: str, old: dict, new: dict, lines: list[str]) -> None:
    _diff_keyed(f"{where} field ", old, new, _diff_field, lines)


def _diff_field(where: str, old: dict, new: dict, lines: list[str]) -> None:
    if old["required"] != new["required"]:
        lines.append(f"{where}: {'now required' if new['required'] else 'now optional'}")
    if old["doc"] != new["doc"]:
        lines.append(f"{where}: doc changed to {new['doc'][:120]!r}")
    _diff_shape(where, old["shape"], new["shape"], lines)


def _diff_shape(where: str, old: dict, new: dict, lines: list[str]) -> None:
    if old["type"] != new["type"]:
        lines.append(f"{where}: {json.dumps(old, sort_keys=True)[:200]} -> {json.dumps(new, sort_keys=True)[:200]}")
    elif old["type"] == "enum":
        gone = [v for v in old["values"] if v not in new["values"]]
        came = [v for v in new["values"] if v not in old["values"]]
        if gone:
            lines.append(f"{where}: values removed {', '.join(json.dumps(v) for v in gone)}")
        if came:
            lines.append(f"{where}: values added {', '.join(json.dumps(v) for v in came)}")
        if not gone and not came and old["values"] != new["values"]:
            lines.append(f"{where}: values reordered to {json.dumps(new['values'])}")
    elif old["type"] == "media" and old["kind"] != new["kind"]:
        lines.append(f"{where}: media kind {old['kind']} -> {new['kind']}")
    elif old["type"] == "list":
        _diff_shape(f"{where}[]", old["items"], new["items"], lines)
    elif old["type"] == "object":
        _diff_fields(where, old["fields"], new["fields"], lines)
    elif old["type"] == "union":
        if len(old["options"]) != len(new["options"]):
            lines.append(f"{where}: {len(old['options'])} options -> {len(new['options'])}")
        for n, (o, p) in enumerate(zip(old["options"], new["options"])):
            _diff_shape(f"{where} option {n + 1}", o, p, lines)


def dumps(contract: dict) -> str:
    return json.dumps(contract, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else CONTRACT_FILE
    target.write_text(dumps(extract()))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
