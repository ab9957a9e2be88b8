"""Field and label selectors as the API server reads them, on stored objects: `fieldSelector`
(`metadata.name`, `metadata.namespace`) and `labelSelector` (`k=v`, `k!=v`, `k`, `!k`,
`k in (…)`, `k notin (…)`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REQUIREMENT = re.compile(r"\s*([^,(]+?(?:\s+(?:in|notin)\s+\([^)]*\))?)\s*(?:,|$)")


def selected(obj: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    """Whether `obj` passes the request's fieldSelector and labelSelector."""
    metadata = obj.get("metadata", {})
    fields = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
    }
    for term in filter(None, (params.get("fieldSelector") or "").split(",")):
        key, negate, value = _split_equality(term)
        if (fields.get(key) == value) == negate:
            return False
    labels: Mapping[str, str] = metadata.get("labels") or {}
    return all(
        _label_ok(labels, term) for term in _REQUIREMENT.findall(params.get("labelSelector") or "")
    )


def _split_equality(term: str) -> tuple[str, bool, str]:
    if "!=" in term:
        key, value = term.split("!=", 1)
        return key.strip(), True, value.strip()
    key, value = term.replace("==", "=").split("=", 1)
    return key.strip(), False, value.strip()


def _label_ok(labels: Mapping[str, str], term: str) -> bool:
    term = term.strip()
    match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term)
    if match:
        key, operator, values = match.groups()
        inside = labels.get(key) in {v.strip() for v in values.split(",")}
        return inside if operator == "in" else not inside
    if "=" in term:
        key, negate, value = _split_equality(term)
        return (labels.get(key) == value) != negate
    if term.startswith("!"):
        return term[1:] not in labels
    return term in labels
