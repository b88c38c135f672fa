"""Write hooks: how a domain takes part in writes that come in through /fhir, without the kernel importing it.

Two kinds, registered by a domain's `install()` (idempotent: registering the same function twice keeps one):

- **create interceptors** (`register_create`): a domain takes over the creation of a resource type. `POST /fhir/<Type>`
  and the POST entries of batch and transaction Bundles ask the interceptors of the type, in registration order; the
  first one that returns a resource has created it (in the caller's session, so inside a transaction it rolls back
  with the Bundle); one that returns None declines, and the store creates the resource as usual.
- **after-write hooks** (`register_after_write`): called in the same transaction after resources of a type were
  created, updated or deleted through the /fhir API (create, update, PATCH, conditional update/delete, delete,
  Bundle entries) or `yilian fhir import` (once per committed batch). A hook that would rather work once per import
  than once per batch passes `after_import`: the import then calls that instead, once, when every file is done.

Writes a domain makes itself (`store.upsert`, `store.bulk_put` from its service) call no hooks: a domain reacting to
its own projections would loop, and it already knows what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from yilian.errors import PreconditionFailed, YilianError
from yilian.fhir import access, patch, store
from yilian.fhir.validation import validate
from yilian.security.actor import Actor

CreateInterceptor = Callable[[Session, Actor, dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class Written:
    """One resource write an after-write hook hears about."""

    action: Literal["create", "update", "delete"]
    res_type: str
    res_id: str
    resource: dict[str, Any] | None  # the version just stored; None for a delete


AfterWrite = Callable[[Session, Actor, Sequence[Written]], object]
AfterImport = Callable[[Session, Actor], object]


@dataclass(frozen=True)
class _AfterHook:
    on_write: AfterWrite
    after_import: AfterImport | None


_interceptors: dict[str, list[CreateInterceptor]] = {}
_after: dict[str, list[_AfterHook]] = {}


def register_create(res_type: str, interceptor: CreateInterceptor) -> None:
    """`interceptor(session, actor, resource)` returns the stored resource it created, or None to let the store do it.

    The resource it gets has been validated against R4 and passed the write access check; inside a transaction it
    carries the id the Bundle planned for it (so that other entries' references to it stay right)."""
    found = _interceptors.setdefault(res_type, [])
    if interceptor not in found:
        found.append(interceptor)


def register_after_write(res_type: str, hook: AfterWrite, *, after_import: AfterImport | None = None) -> None:
    """`hook(session, actor, writes)` after API writes of `res_type`; see the module docstring for imports."""
    found = _after.setdefault(res_type, [])
    if all(h.on_write is not hook for h in found):
        found.append(_AfterHook(hook, after_import))


def has_interceptor(res_type: str) -> bool:
    return bool(_interceptors.get(res_type))


def intercept_create(session: Session, actor: Actor, resource: dict[str, Any]) -> dict[str, Any] | None:
    """The resource a domain created in place of the store, or None when no domain took it."""
    for interceptor in _interceptors.get(str(resource.get("resourceType")), ()):
        created = interceptor(session, actor, resource)
        if created is not None:
            return created
    return None


def after_write(session: Session, actor: Actor, writes: Iterable[Written], *, bulk: bool = False) -> None:
    """Tell the hooks of each type what was written (bulk: from an import batch)."""
    by_type: dict[str, list[Written]] = {}
    for w in writes:
        if _after.get(w.res_type):
            by_type.setdefault(w.res_type, []).append(w)
    for res_type, items in by_type.items():
        for h in _after[res_type]:
            if bulk and h.after_import is not None:
                continue  # this domain catches up once, when the import is done
            h.on_write(session, actor, items)


def import_finished(session: Session, actor: Actor, res_types: Iterable[str]) -> None:
    """End of `yilian fhir import`: the `after_import` hooks of the types that were imported."""
    for res_type in sorted(set(res_types)):
        for h in _after.get(res_type, ()):
            if h.after_import is not None:
                h.after_import(session, actor)


def written(action: Literal["create", "update", "delete"], resource: dict[str, Any]) -> Written:
    return Written(action, resource["resourceType"], resource["id"], resource)


def wants(res_type: str) -> bool:
    """Whether any after-write hook listens to this type (saves building events nobody reads)."""
    return bool(_after.get(res_type))


# --- writes as the API makes them: the store plus the hooks ------------------------------------------------------------


def create(
    session: Session, actor: Actor, resource: dict[str, Any], *, keep_id: bool = False, validated: bool = False
) -> dict[str, Any]:
    """Create through a domain's interceptor when one takes the type, else in the store (then the after-write hooks).

    Without keep_id the server assigns the id, so the interceptor does not see one the client sent."""
    offered = resource if keep_id else {k: v for k, v in resource.items() if k != "id"}
    created = intercept_create(session, actor, offered)
    if created is not None:
        return created
    saved = store.create(session, resource, actor=actor, keep_id=keep_id, validated=validated)
    after_write(session, actor, [written("create", saved)])
    return saved


def update(
    session: Session,
    actor: Actor,
    res_type: str,
    res_id: str,
    resource: dict[str, Any],
    *,
    if_match: str | None = None,
    validated: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Update (or update-as-create); returns the stored version and whether the resource existed before."""
    saved, existed = store.replace(
        session, res_type, res_id, resource, actor=actor, if_match=if_match, validated=validated
    )
    after_write(session, actor, [written("update" if existed else "create", saved)])
    return saved, existed


def delete(session: Session, actor: Actor, res_type: str, res_id: str) -> None:
    if store.delete(session, res_type, res_id, actor=actor):
        after_write(session, actor, [Written("delete", res_type, res_id, None)])


__all__ = [
    "Written",
    "after_write",
    "has_interceptor",
    "import_finished",
    "intercept_create",
    "register_after_write",
    "register_create",
    "wants",
    "written",
]


def patch_resource(
    session: Session,
    actor: Actor,
    current: dict[str, Any],
    content_type: str,
    data: Any,
    *,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Apply a JSON Patch / FHIRPath Patch to the current version, validate the result, store it as an update."""
    res_type, res_id = current["resourceType"], current["id"]
    if if_match is not None and store.parse_etag(if_match) != int(current["meta"]["versionId"]):
        # Before the patch runs: a stale client should hear "read it again", not a confusing failed test operation.
        raise PreconditionFailed(
            f"{res_type}/{res_id} is at version {current['meta']['versionId']}, not {if_match.strip()}: "
            "read it again and re-apply your change",
            field="If-Match",
        )
    patched = patch.apply(res_type, current, content_type, data)
    try:
        validate(patched, res_type)
    except YilianError as exc:
        raise type(exc)(f"the patched resource is not valid: {exc.message}", field=exc.field) from None
    access.check(session, actor, "write", res_type, store.patient_of(patched))  # the patch may move it to a patient
    saved, _ = update(session, actor, res_type, res_id, patched, if_match=if_match, validated=True)
    return saved
