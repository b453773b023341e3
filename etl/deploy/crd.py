"""Validate manifests against a CustomResourceDefinition's schema, as the API server would.

A CRD's ``openAPIV3Schema`` is almost JSON Schema; the differences that matter:

* ``x-kubernetes-int-or-string: true`` means integer or string (the CRDs usually
  spell the ``anyOf`` out too; where they do not, it is added);
* ``nullable: true`` admits ``null``;
* an object schema with ``properties`` admits no other keys: the API server prunes
  them, or rejects them under strict field validation (``kubectl --validate=strict``),
  which is what a typo in a generated manifest deserves here. Objects marked
  ``x-kubernetes-preserve-unknown-fields`` stay open, and so does ``metadata``
  (the API server checks ObjectMeta itself);
* other ``x-kubernetes-*`` keys only steer merging and are ignored.

``jsonschema`` is imported when a validator is built: only the tests and the
deploy tooling need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


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
    """The JSON Schema equivalent of a structural schema (see the module docstring)."""
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
    """Read a CRD file (the first YAML document that is one)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on 200 kB
    for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
        if document and document.get("kind") == "CustomResourceDefinition":
            return document
    raise ValueError(f"{path} holds no CustomResourceDefinition")


def crd_validator(crd: dict[str, Any], version: str) -> Any:
    """A ``jsonschema`` validator of one version of ``crd``, with the API server's strictness.

    The schema itself is not checked against the meta-schema here (a quarter of a
    second for these CRDs); the tests check it once.
    """
    import jsonschema

    return jsonschema.Draft7Validator(strict_schema(crd_schema(crd, version)))


def manifest_errors(crd: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Why the API server would refuse ``manifest`` (empty: it would accept it).

    The kind and group must be the CRD's, the version one it serves; then every
    schema violation, as ``path: message``.
    """
    names = crd["spec"]["names"]
    group, _, version = manifest.get("apiVersion", "").partition("/")
    if manifest.get("kind") != names["kind"] or group != crd["spec"]["group"]:
        return [f"not a {names['kind']} of {crd['spec']['group']}"]
    try:
        validator = crd_validator(crd, version)
    except KeyError as exc:
        return [str(exc.args[0])]
    return [
        f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    ]
