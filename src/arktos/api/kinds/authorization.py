"""`authorization.k8s.io/v1` review kinds: asked, answered, never stored (what
`kubectl auth can-i` uses). Tenant-scoped, as in Arktos. No I/O here."""

from __future__ import annotations

from arktos.api.errors import Cause
from arktos.api.resources import Obj, ResourceType, Scope

_G = "authorization.k8s.io"


def _review_causes(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    has_res = isinstance(spec.get("resourceAttributes"), dict)
    has_url = isinstance(spec.get("nonResourceAttributes"), dict)
    if has_res == has_url:
        return [Cause("spec", "exactly one of resourceAttributes or nonResourceAttributes "
                      "must be specified", "FieldValueRequired")]
    return []


def _review_name(name: str) -> list[str]:
    return []


def _review(kind: str, plural: str) -> ResourceType:
    return ResourceType(_G, "v1", kind, plural, Scope.TENANT, subresources=frozenset(),
                        spec_fields=(), verbs=("create",), validate=_review_causes,
                        name_check=_review_name)


TYPES = [_review("SelfSubjectAccessReview", "selfsubjectaccessreviews"),
         _review("SubjectAccessReview", "subjectaccessreviews")]
