#!/usr/bin/env python3
"""Confluent Schema Registry STAND-IN -- for local development and tests only.

No Confluent-compatible schema registry can be installed from the package
registries this project's machines reach, so this small server implements the
subset of the Confluent Schema Registry REST API (v1) that stock clients use:
the Rust `schema_registry_converter` crate, the Python `confluent-kafka`
SchemaRegistryClient / AvroSerializer / AvroDeserializer, and analysts' tools.
Production points at a real registry (Confluent, Apicurio ccompat, Redpanda);
nothing in the services may depend on behaviour that only this stand-in has.

Implemented (content type application/vnd.schemaregistry.v1+json):
  POST   /subjects/{subject}/versions              register -> {"id": N}
  POST   /subjects/{subject}                       look up  -> {subject,id,version,schema}
  GET    /subjects[?deleted=true&subjectPrefix=p]
  GET    /subjects/{subject}/versions[?deleted=true]
  GET    /subjects/{subject}/versions/{version|latest}[/schema]
  GET    /subjects/{subject}/versions/{version}/referencedby
  DELETE /subjects/{subject}[?permanent=true]      (soft delete first, as Confluent)
  DELETE /subjects/{subject}/versions/{version}[?permanent=true]
  GET    /schemas/ids/{id}[/schema|/subjects|/versions]
  GET    /schemas/types
  POST   /compatibility/subjects/{subject}/versions[/{version|latest}][?verbose=true]
  GET/PUT         /config              {"compatibilityLevel"} / {"compatibility"}
  GET/PUT/DELETE  /config/{subject}    (GET ?defaultToGlobal=true)
  GET/PUT  /mode, /mode/{subject}      (always READWRITE)

Semantics kept from Confluent:
  * schema ids are global: the same schema (and references) in two subjects
    gets the same id; re-registering an existing schema returns its id;
  * schema identity compares canonical JSON (parsed, keys sorted, no
    whitespace), so clients may send any formatting;
  * compatibility levels BACKWARD (default), BACKWARD_TRANSITIVE, FORWARD,
    FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE, NONE, checked with the Avro
    schema-resolution rules (records and field defaults, aliases, type
    promotions int->long->float->double, string<->bytes, unions, enums and
    enum defaults, fixed sizes, arrays, maps, named/recursive types);
    registering an incompatible schema answers 409;
  * errors are {"error_code": N, "message": "..."} with Confluent's codes
    (40401 subject, 40402 version, 40403 schema not found, 40408, 409,
    42201 invalid schema, 42202 invalid version, 42203 invalid level);
  * only schemaType AVRO (the default) is supported; others answer 422.
Not implemented: contexts, metadata/rule sets (accepted and ignored),
exporters, auth, leader election, JSON Schema/Protobuf.

State is kept in memory and persisted atomically to DATA_DIR/registry.json
after every change, so a restart keeps ids and versions.

Usage: schema_registry_standin.py [--host 127.0.0.1] [--port 8081] [--data-dir DIR]
Python standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"
MAX_VERSION = 2**31 - 1


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def subject_not_found(subject: str) -> ApiError:
    return ApiError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(subject: str, version) -> ApiError:
    return ApiError(404, 40402, f"Version {version} not found.")


def schema_not_found(detail: str = "Schema not found") -> ApiError:
    return ApiError(404, 40403, detail)


def invalid_schema(detail: str) -> ApiError:
    return ApiError(422, 42201, f"Invalid schema: {detail}")


# --------------------------------------------------------------------------
# Avro schema model and parser
# --------------------------------------------------------------------------

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AvroSchemaError(Exception):
    pass


class Prim:
    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind

    def describe(self) -> str:
        return self.kind


class Named:
    kind = ""

    def __init__(self, fullname: str, aliases):
        self.fullname = fullname
        self.name = fullname.rsplit(".", 1)[-1]
        self.aliases = aliases  # full names

    def describe(self) -> str:
        return f"{self.kind} {self.fullname}"


class Record(Named):
    kind = "record"

    def __init__(self, fullname, aliases):
        super().__init__(fullname, aliases)
        self.fields = []  # list of Field


class Field:
    __slots__ = ("name", "type", "has_default", "default", "aliases")

    def __init__(self, name, ftype, has_default, default, aliases):
        self.name = name
        self.type = ftype
        self.has_default = has_default
        self.default = default
        self.aliases = aliases


class Enum(Named):
    kind = "enum"

    def __init__(self, fullname, aliases, symbols, default):
        super().__init__(fullname, aliases)
        self.symbols = symbols
        self.default = default


class Fixed(Named):
    kind = "fixed"

    def __init__(self, fullname, aliases, size):
        super().__init__(fullname, aliases)
        self.size = size


class Array:
    kind = "array"

    def __init__(self, items):
        self.items = items

    def describe(self) -> str:
        return "array"


class Map:
    kind = "map"

    def __init__(self, values):
        self.values = values

    def describe(self) -> str:
        return "map"


class Union:
    kind = "union"

    def __init__(self, branches):
        self.branches = branches

    def describe(self) -> str:
        return "union"


class Ref:
    """A by-name reference to a named type, resolved after parsing."""

    kind = "ref"

    def __init__(self, candidates, names):
        self.candidates = candidates
        self.names = names

    def resolve(self):
        for c in self.candidates:
            if c in self.names:
                return self.names[c]
        raise AvroSchemaError(f"Unknown type: {self.candidates[0]}")


def deref(t):
    while isinstance(t, Ref):
        t = t.resolve()
    return t


def _fullname(name: str, namespace: str | None) -> str:
    if "." in name:
        return name
    return f"{namespace}.{name}" if namespace else name


def _check_name(fullname: str) -> None:
    for part in fullname.split("."):
        if not NAME_RE.match(part):
            raise AvroSchemaError(f"Illegal name: {fullname}")


class AvroParser:
    def __init__(self, predefined=None):
        self.names = dict(predefined or {})

    def parse(self, obj, namespace=None):
        t = self._parse(obj, namespace)
        self._validate(t, set())
        return t

    def _register(self, named: Named):
        if named.fullname in self.names:
            raise AvroSchemaError(f"Can't redefine: {named.fullname}")
        self.names[named.fullname] = named

    def _aliases(self, obj, namespace):
        aliases = obj.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise AvroSchemaError("aliases must be a list of strings")
        return [_fullname(a, namespace) for a in aliases]

    def _parse(self, obj, namespace):
        if isinstance(obj, str):
            if obj in PRIMITIVES:
                return Prim(obj)
            candidates = [_fullname(obj, namespace)]
            if "." not in obj:
                candidates.append(obj)
            return Ref(candidates, self.names)
        if isinstance(obj, list):
            branches = [self._parse(b, namespace) for b in obj]
            return Union(branches)
        if not isinstance(obj, dict):
            raise AvroSchemaError(f"Not a valid Avro schema: {json.dumps(obj)}")
        typ = obj.get("type")
        if typ is None:
            raise AvroSchemaError(f"No type: {json.dumps(obj)}")
        if isinstance(typ, (list, dict)):
            # {"type": {...}} / {"type": [...]} wrappers are legal
            return self._parse(typ, namespace)
        if not isinstance(typ, str):
            raise AvroSchemaError(f"Bad type: {json.dumps(typ)}")
        if typ in PRIMITIVES:
            return Prim(typ)
        if typ in ("record", "error", "enum", "fixed"):
            name = obj.get("name")
            if not isinstance(name, str) or not name:
                raise AvroSchemaError(f"No name in schema: {json.dumps(obj)[:200]}")
            ns = obj.get("namespace", namespace)
            if ns is not None and not isinstance(ns, str):
                raise AvroSchemaError("namespace must be a string")
            if "." in name:
                fullname = name
                ns = name.rsplit(".", 1)[0]
            else:
                fullname = _fullname(name, ns or None)
            _check_name(fullname)
            aliases = self._aliases(obj, ns or None)
            if typ in ("record", "error"):
                rec = Record(fullname, aliases)
                self._register(rec)
                fields = obj.get("fields")
                if not isinstance(fields, list):
                    raise AvroSchemaError(f"Record has no fields: {fullname}")
                seen = set()
                for f in fields:
                    if not isinstance(f, dict):
                        raise AvroSchemaError(f"Bad field in {fullname}")
                    fname = f.get("name")
                    if not isinstance(fname, str) or not NAME_RE.match(fname):
                        raise AvroSchemaError(f"Bad field name in {fullname}: {fname!r}")
                    if fname in seen:
                        raise AvroSchemaError(f"Duplicate field {fname} in record {fullname}")
                    seen.add(fname)
                    if "type" not in f:
                        raise AvroSchemaError(f"No field type: {fname}")
                    ftype = self._parse(f["type"], ns or None)
                    faliases = f.get("aliases", [])
                    if not isinstance(faliases, list):
                        raise AvroSchemaError("field aliases must be a list")
                    rec.fields.append(
                        Field(fname, ftype, "default" in f, f.get("default"), list(faliases))
                    )
                return rec
            if typ == "enum":
                symbols = obj.get("symbols")
                if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                    raise AvroSchemaError(f"Enum symbols must be a list of strings: {fullname}")
                if len(set(symbols)) != len(symbols):
                    raise AvroSchemaError(f"Duplicate enum symbol in {fullname}")
                for s in symbols:
                    if not NAME_RE.match(s):
                        raise AvroSchemaError(f"Illegal enum symbol {s!r} in {fullname}")
                default = obj.get("default")
                if default is not None and default not in symbols:
                    raise AvroSchemaError(f"Enum default {default!r} not a symbol of {fullname}")
                en = Enum(fullname, aliases, symbols, default)
                self._register(en)
                return en
            size = obj.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise AvroSchemaError(f"Invalid fixed size for {fullname}")
            fx = Fixed(fullname, aliases, size)
            self._register(fx)
            return fx
        if typ == "array":
            if "items" not in obj:
                raise AvroSchemaError("Array has no items")
            return Array(self._parse(obj["items"], namespace))
        if typ == "map":
            if "values" not in obj:
                raise AvroSchemaError("Map has no values")
            return Map(self._parse(obj["values"], namespace))
        # a named-type reference written as {"type": "some.Name"}
        return self._parse(typ, namespace)

    def _validate(self, t, visiting):
        """Resolve all references, check unions and field defaults."""
        t = deref(t)
        if isinstance(t, Record):
            if id(t) in visiting:
                return
            visiting.add(id(t))
            for f in t.fields:
                self._validate(f.type, visiting)
                if f.has_default and not default_ok(f.type, f.default):
                    raise AvroSchemaError(
                        f"Invalid default for field {f.name} in {t.fullname}: {json.dumps(f.default)}"
                    )
        elif isinstance(t, Array):
            self._validate(t.items, visiting)
        elif isinstance(t, Map):
            self._validate(t.values, visiting)
        elif isinstance(t, Union):
            seen = set()
            for b in t.branches:
                bb = deref(b)
                if isinstance(bb, Union):
                    raise AvroSchemaError("Nested union")
                key = bb.fullname if isinstance(bb, Named) else bb.kind
                if key in seen:
                    raise AvroSchemaError(f"Duplicate in union: {key}")
                seen.add(key)
                self._validate(bb, visiting)


def default_ok(t, v, depth=0) -> bool:
    if depth > 64:
        return True
    t = deref(t)
    if isinstance(t, Prim):
        k = t.kind
        if k == "null":
            return v is None
        if k == "boolean":
            return isinstance(v, bool)
        if k in ("int", "long"):
            return isinstance(v, int) and not isinstance(v, bool)
        if k in ("float", "double"):
            return isinstance(v, (int, float)) and not isinstance(v, bool) or v in ("NaN", "Infinity", "-Infinity")
        return isinstance(v, str)  # string, bytes
    if isinstance(t, Union):
        return bool(t.branches) and default_ok(t.branches[0], v, depth + 1)
    if isinstance(t, Enum):
        return isinstance(v, str) and v in t.symbols
    if isinstance(t, Fixed):
        return isinstance(v, str)
    if isinstance(t, Array):
        return isinstance(v, list) and all(default_ok(t.items, x, depth + 1) for x in v)
    if isinstance(t, Map):
        return isinstance(v, dict) and all(default_ok(t.values, x, depth + 1) for x in v.values())
    if isinstance(t, Record):
        if not isinstance(v, dict):
            return False
        for f in t.fields:
            if f.name in v:
                if not default_ok(f.type, v[f.name], depth + 1):
                    return False
            elif not f.has_default:
                return False
        return True
    return True


# --------------------------------------------------------------------------
# Avro schema resolution (can a reader schema read data written with a writer)
# --------------------------------------------------------------------------

PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}  # (writer, reader)


class Incompat:
    def __init__(self, error_type, path, description, info):
        self.error_type = error_type
        self.path = path or "/"
        self.description = description
        self.info = info


class Resolver:
    def __init__(self, reader_label="reader", writer_label="writer"):
        self.rl = reader_label
        self.wl = writer_label
        self.in_progress = set()

    def check(self, reader, writer, path=""):
        r = deref(reader)
        w = deref(writer)
        key = (id(r), id(w))
        if key in self.in_progress:
            return []  # recursion: assume compatible, as Avro's checker does
        self.in_progress.add(key)
        try:
            return self._check(r, w, path)
        finally:
            self.in_progress.discard(key)

    def _names_match(self, r: Named, w: Named) -> bool:
        if r.name == w.name or r.fullname == w.fullname:
            return True
        return w.fullname in r.aliases or w.name in [a.rsplit(".", 1)[-1] for a in r.aliases]

    def _name_mismatch(self, r, w, path):
        return [
            Incompat(
                "NAME_MISMATCH",
                path + "/name",
                f"The {self.rl} schema has name '{r.fullname}' that does not match the "
                f"{self.wl} schema name '{w.fullname}'",
                "expected: " + w.fullname,
            )
        ]

    def _check(self, r, w, path):
        if r.kind == w.kind and not isinstance(r, Union):
            if isinstance(r, Prim):
                return []
            if isinstance(r, Record):
                if not self._names_match(r, w):
                    return self._name_mismatch(r, w, path)
                out = []
                wfields = {f.name: f for f in w.fields}
                for i, rf in enumerate(r.fields):
                    wf = wfields.get(rf.name)
                    if wf is None:
                        for a in rf.aliases:
                            if a in wfields:
                                wf = wfields[a]
                                break
                    fpath = f"{path}/fields/{i}"
                    if wf is None:
                        if not rf.has_default:
                            out.append(
                                Incompat(
                                    "READER_FIELD_MISSING_DEFAULT_VALUE",
                                    fpath,
                                    f"The field '{rf.name}' at path '{fpath}' in the {self.rl} "
                                    f"schema has no default value and is missing in the {self.wl} schema",
                                    rf.name,
                                )
                            )
                    else:
                        out.extend(self.check(rf.type, wf.type, fpath + "/type"))
                return out
            if isinstance(r, Enum):
                if not self._names_match(r, w):
                    return self._name_mismatch(r, w, path)
                missing = [s for s in w.symbols if s not in r.symbols]
                if missing and r.default is None:
                    return [
                        Incompat(
                            "MISSING_ENUM_SYMBOLS",
                            path + "/symbols",
                            f"The {self.rl} schema is missing enum symbols '{missing}' at path "
                            f"'{path or '/'}' in the {self.wl} schema",
                            str(missing),
                        )
                    ]
                return []
            if isinstance(r, Fixed):
                if not self._names_match(r, w):
                    return self._name_mismatch(r, w, path)
                if r.size != w.size:
                    return [
                        Incompat(
                            "FIXED_SIZE_MISMATCH",
                            path + "/size",
                            f"The size of FIXED type field at path '{path or '/'}' in the {self.rl} "
                            f"schema ({r.size}) does not match with the {self.wl} schema ({w.size})",
                            f"expected: {w.size}, found: {r.size}",
                        )
                    ]
                return []
            if isinstance(r, Array):
                return self.check(r.items, w.items, path + "/items")
            if isinstance(r, Map):
                return self.check(r.values, w.values, path + "/values")
        if isinstance(w, Union):
            # every branch the writer may have used must be readable
            out = []
            for j, wb in enumerate(w.branches):
                out.extend(self.check(r, wb, f"{path}/{j}"))
            return out
        if isinstance(r, Prim) and isinstance(w, Prim) and (w.kind, r.kind) in PROMOTIONS:
            return []
        if isinstance(r, Union):
            for rb in r.branches:
                if not self.check(rb, w, path):
                    return []
            return [
                Incompat(
                    "MISSING_UNION_BRANCH",
                    path or "/",
                    f"The {self.rl} schema has a union at path '{path or '/'}' that is missing a "
                    f"branch for the {self.wl} type {w.describe()}",
                    "reader union lacking writer type: " + w.describe().upper(),
                )
            ]
        return [
            Incompat(
                "TYPE_MISMATCH",
                path or "/",
                f"The type (path '{path or '/'}') of a field in the {self.rl} schema does not match "
                f"with the {self.wl} schema",
                f"reader type: {r.describe().upper()} not compatible with writer type: {w.describe().upper()}",
            )
        ]


def incompatibilities(new, old, level):
    """Problems with `new` against one previous schema `old` under `level`."""
    base = level.replace("_TRANSITIVE", "")
    out = []
    if base in ("BACKWARD", "FULL"):
        out += Resolver("new", "old").check(new, old)
    if base in ("FORWARD", "FULL"):
        out += Resolver("old", "new").check(old, new)
    return out


# --------------------------------------------------------------------------
# Registry state
# --------------------------------------------------------------------------


def canonical(parsed_json) -> str:
    return json.dumps(parsed_json, sort_keys=True, separators=(",", ":"))


class Registry:
    def __init__(self, data_dir: str | None):
        self.lock = threading.RLock()
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, "registry.json") if data_dir else None
        self.next_id = 1
        # id -> {"schema": str, "schemaType": str, "references": [...], "key": str}
        self.schemas: dict[int, dict] = {}
        # subject -> list of {"version", "id", "deleted"}
        self.subjects: dict[str, list] = {}
        self.global_level = DEFAULT_LEVEL
        self.subject_levels: dict[str, str] = {}
        self.key_to_id: dict[str, int] = {}
        self._parsed_cache: dict[int, object] = {}
        self._load()

    # --- persistence -----------------------------------------------------
    def _load(self):
        if not self.path or not os.path.exists(self.path):
            return
        with open(self.path, "r", encoding="utf-8") as f:
            st = json.load(f)
        self.next_id = st.get("next_id", 1)
        self.schemas = {int(k): v for k, v in st.get("schemas", {}).items()}
        self.subjects = st.get("subjects", {})
        self.global_level = st.get("global_level", DEFAULT_LEVEL)
        self.subject_levels = st.get("subject_levels", {})
        self.key_to_id = {v["key"]: k for k, v in self.schemas.items()}

    def _save(self):
        if not self.path:
            return
        os.makedirs(self.data_dir, exist_ok=True)
        st = {
            "format": 1,
            "next_id": self.next_id,
            "schemas": {str(k): v for k, v in sorted(self.schemas.items())},
            "subjects": self.subjects,
            "global_level": self.global_level,
            "subject_levels": self.subject_levels,
        }
        fd, tmp = tempfile.mkstemp(prefix=".registry.", suffix=".tmp", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(st, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:
            dfd = os.open(self.data_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass

    # --- helpers ---------------------------------------------------------
    def _versions(self, subject, include_deleted=False):
        vs = self.subjects.get(subject, [])
        return [v for v in vs if include_deleted or not v.get("deleted")]

    def _require_subject(self, subject, include_deleted=False):
        vs = self._versions(subject, include_deleted)
        if not vs:
            raise subject_not_found(subject)
        return vs

    def _find_version(self, subject, version, include_deleted=False):
        vs = self._require_subject(subject, include_deleted)
        v = parse_version(version)
        if v == -1:
            return vs[-1]
        for entry in vs:
            if entry["version"] == v:
                return entry
        raise version_not_found(subject, version)

    def _level(self, subject):
        return self.subject_levels.get(subject, self.global_level)

    def _resolve_references(self, references, depth=0):
        """Named types defined by the referenced schemas."""
        if depth > 32:
            raise invalid_schema("reference cycle")
        names = {}
        for ref in references or []:
            if not isinstance(ref, dict) or "subject" not in ref or "version" not in ref:
                raise invalid_schema(f"bad reference {ref!r}")
            try:
                entry = self._find_version(ref["subject"], ref["version"], include_deleted=True)
            except ApiError:
                raise invalid_schema(
                    f"reference {ref.get('name')!r} -> {ref['subject']} v{ref['version']} not found"
                )
            sch = self.schemas[entry["id"]]
            sub = self._resolve_references(sch.get("references"), depth + 1)
            names.update(sub)
            parser = AvroParser(names)
            try:
                parser.parse(json.loads(sch["schema"]))
            except AvroSchemaError as e:
                raise invalid_schema(str(e))
            names.update(parser.names)
        return names

    def _parse(self, schema_str, references):
        """-> (parsed json, model); raises 422 on invalid input."""
        if not isinstance(schema_str, str):
            raise invalid_schema("'schema' must be a string")
        try:
            js = json.loads(schema_str)
        except ValueError:
            if schema_str.strip() in PRIMITIVES:
                js = schema_str.strip()
            else:
                raise invalid_schema(f"not valid JSON: {schema_str[:200]}")
        predefined = self._resolve_references(references)
        try:
            model = AvroParser(predefined).parse(js)
        except (AvroSchemaError, RecursionError) as e:
            raise invalid_schema(str(e))
        return js, model

    def _model_for_id(self, sid):
        m = self._parsed_cache.get(sid)
        if m is None:
            sch = self.schemas[sid]
            _, m = self._parse(sch["schema"], sch.get("references"))
            self._parsed_cache[sid] = m
        return m

    @staticmethod
    def _check_request(body):
        if not isinstance(body, dict):
            raise ApiError(422, 42201, "Invalid schema: request body must be a JSON object")
        stype = body.get("schemaType") or "AVRO"
        if str(stype).upper() != "AVRO":
            raise ApiError(
                422,
                42201,
                f"Invalid schema: unsupported schemaType {stype!r} (this stand-in supports AVRO only)",
            )
        if "schema" not in body:
            raise ApiError(422, 42201, "Invalid schema: missing 'schema'")
        refs = body.get("references") or []
        if not isinstance(refs, list):
            raise invalid_schema("'references' must be a list")
        norm_refs = [
            {"name": r.get("name"), "subject": r.get("subject"), "version": r.get("version")}
            for r in refs
            if isinstance(r, dict)
        ]
        return body["schema"], norm_refs

    @staticmethod
    def _key(js, refs):
        return canonical(js) + "|" + canonical(refs)

    def _schema_response(self, subject, entry):
        sch = self.schemas[entry["id"]]
        out = {
            "subject": subject,
            "version": entry["version"],
            "id": entry["id"],
            "schema": sch["schema"],
        }
        if sch.get("references"):
            out["references"] = sch["references"]
        return out

    # --- operations ------------------------------------------------------
    def register(self, subject, body):
        schema_str, refs = self._check_request(body)
        with self.lock:
            js, model = self._parse(schema_str, refs)
            key = self._key(js, refs)
            live = self._versions(subject)
            existing_id = self.key_to_id.get(key)
            if existing_id is not None:
                for entry in live:
                    if entry["id"] == existing_id:
                        return {"id": existing_id}
            level = self._level(subject)
            if live and level != "NONE":
                olds = live if level.endswith("_TRANSITIVE") else live[-1:]
                problems = []
                for entry in reversed(olds):
                    for p in incompatibilities(model, self._model_for_id(entry["id"]), level):
                        problems.append(format_problem(p, entry["version"], level))
                if problems:
                    raise ApiError(
                        409,
                        409,
                        f"Schema being registered is incompatible with an earlier schema for "
                        f"subject \"{subject}\", details: [{', '.join(problems)}]",
                    )
            if existing_id is None:
                sid = self.next_id
                self.next_id += 1
                self.schemas[sid] = {
                    "schema": json.dumps(js, separators=(",", ":")),
                    "schemaType": "AVRO",
                    "references": refs,
                    "key": key,
                }
                self.key_to_id[key] = sid
                self._parsed_cache[sid] = model
            else:
                sid = existing_id
            all_versions = self.subjects.setdefault(subject, [])
            version = (max(e["version"] for e in all_versions) + 1) if all_versions else 1
            all_versions.append({"version": version, "id": sid, "deleted": False})
            self._save()
            return {"id": sid}

    def lookup(self, subject, body, include_deleted):
        schema_str, refs = self._check_request(body)
        with self.lock:
            vs = self._require_subject(subject, include_deleted)
            js, _ = self._parse(schema_str, refs)
            sid = self.key_to_id.get(self._key(js, refs))
            for entry in reversed(vs):
                if entry["id"] == sid:
                    return self._schema_response(subject, entry)
            raise schema_not_found()

    def compatibility(self, subject, version, body, verbose):
        schema_str, refs = self._check_request(body)
        with self.lock:
            _, model = self._parse(schema_str, refs)
            level = self._level(subject)
            live = self._versions(subject)
            if version is None or parse_version(version) == -1:
                if not live:
                    # nothing to be compatible with (Confluent answers the same)
                    return {"is_compatible": True, "messages": []} if verbose else {"is_compatible": True}
                olds = live if level.endswith("_TRANSITIVE") else live[-1:]
            else:
                olds = [self._find_version(subject, version)]
            messages = []
            if level != "NONE":
                for entry in reversed(olds):
                    for p in incompatibilities(model, self._model_for_id(entry["id"]), level):
                        messages.append(format_problem(p, entry["version"], level, self.schemas[entry["id"]]["schema"]))
            out = {"is_compatible": not messages}
            if verbose:
                out["messages"] = messages
            return out

    def subjects_list(self, include_deleted, prefix):
        with self.lock:
            return sorted(
                s
                for s in self.subjects
                if self._versions(s, include_deleted) and s.startswith(prefix or "")
            )

    def versions_list(self, subject, include_deleted):
        with self.lock:
            return [e["version"] for e in self._require_subject(subject, include_deleted)]

    def get_version(self, subject, version, include_deleted):
        with self.lock:
            return self._schema_response(subject, self._find_version(subject, version, include_deleted))

    def referenced_by(self, subject, version):
        with self.lock:
            entry = self._find_version(subject, version)
            out = []
            for sid, sch in sorted(self.schemas.items()):
                for r in sch.get("references") or []:
                    if r.get("subject") == subject and r.get("version") == entry["version"]:
                        out.append(sid)
                        break
            return out

    def delete_subject(self, subject, permanent):
        with self.lock:
            vs = self.subjects.get(subject)
            if not vs:
                raise subject_not_found(subject)
            if permanent:
                if any(not e.get("deleted") for e in vs):
                    raise ApiError(
                        404,
                        40405,
                        f"Subject '{subject}' was not deleted first before being permanently deleted",
                    )
                versions = [e["version"] for e in vs]
                del self.subjects[subject]
                self.subject_levels.pop(subject, None)
            else:
                live = [e for e in vs if not e.get("deleted")]
                if not live:
                    raise ApiError(404, 40404, f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently")
                versions = [e["version"] for e in live]
                for e in live:
                    e["deleted"] = True
            self._save()
            return versions

    def delete_version(self, subject, version, permanent):
        with self.lock:
            entry = self._find_version(subject, version, include_deleted=permanent)
            if permanent:
                if not entry.get("deleted"):
                    raise ApiError(
                        404,
                        40407,
                        f"Subject '{subject}' Version {entry['version']} was not deleted first before being permanently deleted",
                    )
                self.subjects[subject].remove(entry)
                if not self.subjects[subject]:
                    del self.subjects[subject]
            else:
                entry["deleted"] = True
            self._save()
            return entry["version"]

    def schema_by_id(self, sid):
        with self.lock:
            sch = self.schemas.get(sid)
            if sch is None:
                raise schema_not_found(f"Schema {sid} not found")
            out = {"schema": sch["schema"]}
            if sch.get("references"):
                out["references"] = sch["references"]
            return out

    def subjects_for_id(self, sid, include_deleted=False):
        with self.lock:
            if sid not in self.schemas:
                raise schema_not_found(f"Schema {sid} not found")
            return sorted(
                {s for s, vs in self.subjects.items() for e in vs if e["id"] == sid and (include_deleted or not e.get("deleted"))}
            )

    def versions_for_id(self, sid, include_deleted=False):
        with self.lock:
            if sid not in self.schemas:
                raise schema_not_found(f"Schema {sid} not found")
            return [
                {"subject": s, "version": e["version"]}
                for s, vs in sorted(self.subjects.items())
                for e in vs
                if e["id"] == sid and (include_deleted or not e.get("deleted"))
            ]

    def set_level(self, subject, body):
        if not isinstance(body, dict):
            raise ApiError(422, 42203, "Invalid compatibility level")
        level = body.get("compatibility") or body.get("compatibilityLevel")
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise ApiError(422, 42203, f"Invalid compatibility level. Valid values are {list(LEVELS)}")
        level = level.upper()
        with self.lock:
            if subject is None:
                self.global_level = level
            else:
                self.subject_levels[subject] = level
            self._save()
        return {"compatibility": level}

    def get_level(self, subject, default_to_global):
        with self.lock:
            if subject is None:
                return {"compatibilityLevel": self.global_level}
            if subject in self.subject_levels:
                return {"compatibilityLevel": self.subject_levels[subject]}
            if default_to_global:
                return {"compatibilityLevel": self.global_level}
            raise ApiError(
                404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
            )

    def delete_level(self, subject):
        with self.lock:
            if subject not in self.subject_levels:
                raise subject_not_found(subject)
            old = self.subject_levels.pop(subject)
            self._save()
            return {"compatibilityLevel": old}


def parse_version(version):
    if isinstance(version, int) and not isinstance(version, bool):
        v = version
    elif isinstance(version, str) and version == "latest":
        return -1
    else:
        try:
            v = int(str(version))
        except ValueError:
            v = 0
    if v == -1:
        return -1
    if v < 1 or v > MAX_VERSION:
        raise ApiError(
            422,
            42202,
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            f"between [1, 2^31-1] and the string \"latest\"",
        )
    return v


def format_problem(p: Incompat, old_version, level, old_schema=None):
    s = (
        f"{{errorType:'{p.error_type}', description:'{p.description}', "
        f"additionalInfo:'{p.info}'}}, {{oldSchemaVersion: {old_version}}}"
    )
    if old_schema is not None:
        s += f", {{oldSchema: '{old_schema}'}}"
    return s + f", {{compatibility: '{level}'}}"


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


def _flag(query, name):
    vals = query.get(name)
    return bool(vals) and vals[-1].lower() == "true"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chaos-schema-registry-standin/1"
    registry: Registry = None  # set on the class by serve()
    quiet = False

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write(
                "%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), fmt % args)
            )

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(chunks)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, 400, "Unrecognized field or malformed JSON in request body")

    def _send(self, status, obj):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_raw_schema(self, schema_str):
        body = schema_str.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self, method):
        try:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            parts = [unquote(p) for p in url.path.split("/") if p]
            body = self._read_body() if method in ("POST", "PUT") else None
            result = self._route(method, parts, query, body)
            if isinstance(result, RawSchema):
                self._send_raw_schema(result.text)
            else:
                self._send(200, result)
        except ApiError as e:
            self._send(e.status, {"error_code": e.code, "message": e.message})
        except Exception as e:  # pragma: no cover - defensive
            self._send(500, {"error_code": 50001, "message": f"Error in the backend data store: {e!r}"})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _route(self, method, parts, query, body):
        reg = self.registry
        n = len(parts)
        deleted = _flag(query, "deleted")

        def bad_method():
            raise ApiError(405, 405, "HTTP 405 Method Not Allowed")

        if n == 0:
            return {}
        head = parts[0]
        if head == "subjects":
            if n == 1:
                if method != "GET":
                    bad_method()
                prefix = (query.get("subjectPrefix") or [""])[-1]
                return reg.subjects_list(deleted, prefix)
            subject = parts[1]
            if n == 2:
                if method == "POST":
                    return reg.lookup(subject, body, deleted)
                if method == "DELETE":
                    return reg.delete_subject(subject, _flag(query, "permanent"))
                bad_method()
            if parts[2] == "versions":
                if n == 3:
                    if method == "POST":
                        return reg.register(subject, body)
                    if method == "GET":
                        return reg.versions_list(subject, deleted)
                    bad_method()
                version = parts[3]
                if n == 4:
                    if method == "GET":
                        return reg.get_version(subject, version, deleted)
                    if method == "DELETE":
                        return reg.delete_version(subject, version, _flag(query, "permanent"))
                    bad_method()
                if n == 5 and parts[4] == "schema" and method == "GET":
                    return RawSchema(reg.get_version(subject, version, deleted)["schema"])
                if n == 5 and parts[4] == "referencedby" and method == "GET":
                    return reg.referenced_by(subject, version)
        elif head == "schemas":
            if n == 2 and parts[1] == "types" and method == "GET":
                return ["AVRO"]
            if n >= 3 and parts[1] == "ids" and method == "GET":
                try:
                    sid = int(parts[2])
                except ValueError:
                    raise schema_not_found(f"Schema {parts[2]} not found")
                if n == 3:
                    return reg.schema_by_id(sid)
                if n == 4 and parts[3] == "schema":
                    return RawSchema(reg.schema_by_id(sid)["schema"])
                if n == 4 and parts[3] == "subjects":
                    return reg.subjects_for_id(sid, deleted)
                if n == 4 and parts[3] == "versions":
                    return reg.versions_for_id(sid, deleted)
        elif head == "compatibility":
            if n >= 4 and parts[1] == "subjects" and parts[3] == "versions" and method == "POST":
                version = parts[4] if n == 5 else None
                if n in (4, 5):
                    return reg.compatibility(parts[2], version, body, _flag(query, "verbose"))
        elif head == "config":
            subject = parts[1] if n == 2 else None
            if n <= 2:
                if method == "GET":
                    return reg.get_level(subject, _flag(query, "defaultToGlobal"))
                if method == "PUT":
                    return reg.set_level(subject, body)
                if method == "DELETE" and subject is not None:
                    return reg.delete_level(subject)
                bad_method()
        elif head == "mode":
            if n <= 2:
                if method == "GET":
                    return {"mode": "READWRITE"}
                if method == "PUT":
                    mode = (body or {}).get("mode", "READWRITE")
                    if mode != "READWRITE":
                        raise ApiError(422, 42204, "This stand-in only supports mode READWRITE")
                    return {"mode": mode}
                bad_method()
        elif head == "contexts" and n == 1 and method == "GET":
            return ["."]
        raise ApiError(404, 404, "HTTP 404 Not Found")


class RawSchema:
    def __init__(self, text):
        self.text = text


def serve(host: str, port: int, data_dir: str | None, quiet: bool = False):
    Handler.registry = Registry(data_dir)
    Handler.quiet = quiet
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer((host, port), Handler)

    def _stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.stderr.write(
        f"schema registry STAND-IN listening on http://{host}:{httpd.server_address[1]} "
        f"(data dir: {data_dir or 'none, in memory'})\n"
    )
    sys.stderr.flush()
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument(
        "--data-dir",
        default=None,
        help="directory for registry.json (default: in memory only, nothing persisted)",
    )
    ap.add_argument("--quiet", action="store_true", help="do not log each request")
    args = ap.parse_args(argv)
    serve(args.host, args.port, args.data_dir, args.quiet)


if __name__ == "__main__":
    main()
