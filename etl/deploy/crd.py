"""Validate manifests against the Spark operator's API, as the API server would.

Two sources of schemas, one per kind and API version:

* ours (the default): ``deploy/crds/sparkoperator-v1beta2.schema.yaml``, a JSON Schema
  (draft 7) that we wrote from the operator's v1beta2 API reference. It states its own
  strictness: unknown keys are refused in the operator's objects (spec, driver,
  executor, restartPolicy, the scheduled template, ...), like the API server under
  strict field validation (``kubectl --validate=strict``);
* the operator's own CustomResourceDefinitions, when ``ETL_SPARK_OPERATOR_CRDS`` names a
  folder of CRD files (or :func:`crd_kind_schema` is given one). A CRD's
  ``openAPIV3Schema`` is almost JSON Schema; :func:`strict_schema` bridges the
  differences that matter:

  * ``x-kubernetes-int-or-string: true`` means integer or string (the CRDs usually
    spell the ``anyOf`` out too; where they do not, it is added);
  * ``nullable: true`` admits ``null``;
  * an object schema with ``properties`` admits no other keys (the API server prunes
    them, or rejects them under strict field validation). Objects marked
    ``x-kubernetes-preserve-unknown-fields`` stay open, and so does ``metadata`` (the
    API server checks ObjectMeta itself);
  * other ``x-kubernetes-*`` keys only steer merging and are ignored.

Neither is the last word: the API server validates against the CRDs installed in the
cluster (``kubectl apply --dry-run=server -k deploy/k8s``).

``jsonschema`` is imported when a validator is built: only the tests and the deploy
tooling need it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from etl.paths import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "deploy" / "crds" / "sparkoperator-v1beta2.schema.yaml"
"""Our schema of the operator's v1beta2 resources."""
CRDS_ENV = "ETL_SPARK_OPERATOR_CRDS"
"""A folder of the operator's CRD files to validate against instead of our schema."""
_SCHEMA_KEY = "x-fleet-etl"
_DRAFT7 = "http://json-schema.org/draft-07/schema#"


@dataclass(frozen=True)
class KindSchema:
    """The JSON Schemas of one kind of custom resource, one per API version."""

    group: str
    kind: str
    plural: str
    versions: Mapping[str, dict[str, Any]]
    """API version -> a self-contained draft 7 JSON Schema of the whole object."""
    source: str
    """Where the schema came from (a file), for messages."""

    @property
    def name(self) -> str:
        """The resource's name as a CRD spells it: ``sparkapplications.sparkoperator.k8s.io``."""
        return f"{self.plural}.{self.group}"

    def validator(self, version: str) -> Any:
        """A ``jsonschema`` validator of one version.

        Raises:
            KeyError: the kind has no such version.

        """
        import jsonschema

        if version not in self.versions:
            raise KeyError(f"{self.name} has no version {version}")
        return jsonschema.Draft7Validator(self.versions[version])


# ---- our schema ------------------------------------------------------------------------


def _load_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on CRDs
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, KindSchema]:
    """Our schema file, by kind.

    Each kind's schema is the file's ``definitions`` with a ``$ref`` to the kind's
    entry, so that references between definitions resolve.

    Raises:
        ValueError: the file does not have the layout described at its top.

    """
    document = _load_yaml(path)
    try:
        api = document[_SCHEMA_KEY]
        group, version, kinds = api["group"], api["version"], api["kinds"]
        definitions = document["definitions"]
    except (KeyError, TypeError):
        raise ValueError(
            f"{path}: not a schema of ours (no {_SCHEMA_KEY} or definitions)"
        ) from None
    schemas = {}
    for kind, entry in kinds.items():
        if entry["definition"] not in definitions:
            raise ValueError(f"{path}: {kind} refers to a missing definition")
        root = {
            "$schema": document.get("$schema", _DRAFT7),
            "$ref": f"#/definitions/{entry['definition']}",
            "definitions": definitions,
        }
        schemas[kind] = KindSchema(group, kind, entry["plural"], {version: root}, str(path))
    return schemas


# ---- the operator's CRDs ---------------------------------------------------------------


def crd_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of one served version of a CRD.

    Raises:
        KeyError: the CRD does not define that version.

    """
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return entry["schema"]["openAPIV3Schema"]
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def strict_schema(node: Any, path: tuple[str, ...] = ()) -> Any:
    """The JSON Schema equivalent of a CRD's structural schema (see the module docstring)."""
    if isinstance(node, list):
        return [strict_schema(item, path) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {
        key: strict_schema(value, path)
        for key, value in node.items()
        if key != "properties" and not key.startswith("x-kubernetes-")
    }
    if "properties" in node:
        schema["properties"] = {
            name: strict_schema(child, (*path, name)) for name, child in node["properties"].items()
        }
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in node:
        schema["type"] = [node["type"], "null"]
    open_object = node.get("x-kubernetes-preserve-unknown-fields") or path == ("metadata",)
    if "properties" in node and "additionalProperties" not in node and not open_object:
        schema["additionalProperties"] = False
    return schema


def load_crd(path: Path) -> dict[str, Any]:
    """Read a CRD file (the first YAML document that is one).

    Raises:
        ValueError: the file holds no CustomResourceDefinition.

    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
        if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
            return document
    raise ValueError(f"{path} holds no CustomResourceDefinition")


def crd_kind_schema(crd: dict[str, Any], source: str = "<crd>") -> KindSchema:
    """A CRD as a :class:`KindSchema`: every version it defines, made strict."""
    spec = crd["spec"]
    return KindSchema(
        group=spec["group"],
        kind=spec["names"]["kind"],
        plural=spec["names"]["plural"],
        versions={
            entry["name"]: {"$schema": _DRAFT7, **strict_schema(entry["schema"]["openAPIV3Schema"])}
            for entry in spec["versions"]
        },
        source=source,
    )


def crd_validator(crd: dict[str, Any], version: str) -> Any:
    """A ``jsonschema`` validator of one version of ``crd``, with the API server's strictness.

    Raises:
        KeyError: the CRD does not define that version.

    """
    import jsonschema

    return jsonschema.Draft7Validator(strict_schema(crd_schema(crd, version)))


def load_crds(folder: Path) -> dict[str, KindSchema]:
    """Every CRD file (``*.yaml``, ``*.yml``) in ``folder``, by kind.

    Raises:
        ValueError: a file is not a CRD, or the folder holds none.

    """
    paths = sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"})
    schemas = {}
    for path in paths:
        schema = crd_kind_schema(load_crd(path), str(path))
        schemas[schema.kind] = schema
    if not schemas:
        raise ValueError(f"{folder} holds no CRD files")
    return schemas


# ---- either ----------------------------------------------------------------------------


def spark_operator_schemas(crds: str | Path | None = None) -> dict[str, KindSchema]:
    """The schemas manifests are checked against, by kind.

    The CRD files in ``crds`` if given, else in the folder that ``ETL_SPARK_OPERATOR_CRDS``
    names, else our schema (:data:`SCHEMA_PATH`).
    """
    folder = crds or os.environ.get(CRDS_ENV)
    return load_crds(Path(folder)) if folder else load_schema()


def manifest_errors(schema: KindSchema | dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Why the API server would refuse ``manifest`` (empty: it would accept it).

    ``schema`` is a :class:`KindSchema` or a CRD. The kind and group must be the
    schema's, the version one it has; then every schema violation, as ``path: message``.
    """
    if not isinstance(schema, KindSchema):
        schema = crd_kind_schema(schema)
    group, _, version = str(manifest.get("apiVersion", "")).partition("/")
    if manifest.get("kind") != schema.kind or group != schema.group:
        return [f"not a {schema.kind} of {schema.group}"]
    try:
        validator = schema.validator(version)
    except KeyError as exc:
        return [str(exc.args[0])]
    errors = sorted(
        validator.iter_errors(manifest), key=lambda e: [str(p) for p in e.absolute_path]
    )
    return [
        f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in errors
    ]
