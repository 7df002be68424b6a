"""List and watch options, object filters, and paginated lists served from the watch cache.

Contract of `list_page`: a first page is a consistent snapshot of the cache at `revision`;
continuation pages come from the cache when it has not moved since, else from storage at that
revision (410 Expired once compacted).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import orjson

from arktos.api import errors
from arktos.api.meta import TENANT_ALL
from arktos.api.resources import Obj, ResourceType
from arktos.api.selectors import (
    BASE_FIELDS,
    object_fields,
    parse_field_selector,
    parse_label_selector,
)
from arktos.apiserver.store import Where
from arktos.apiserver.watchcache import Entry, decode
from arktos.storage import Compacted, Storage

Predicate = Callable[[Obj], bool]


@dataclass(frozen=True, slots=True)
class ListOptions:
    """The query parameters of list and watch requests."""

    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    timeout_seconds: int = 0
    allow_bookmarks: bool = False
    send_initial_events: bool = False

    @classmethod
    def from_query(cls, q: Mapping[str, str]) -> ListOptions:
        return cls(
            label_selector=q.get("labelSelector", ""),
            field_selector=q.get("fieldSelector", ""),
            limit=_int(q, "limit"),
            continue_token=q.get("continue", ""),
            resource_version=q.get("resourceVersion", ""),
            resource_version_match=q.get("resourceVersionMatch", ""),
            timeout_seconds=_int(q, "timeoutSeconds"),
            allow_bookmarks=q.get("allowWatchBookmarks", "") in ("1", "true"),
            send_initial_events=q.get("sendInitialEvents", "") in ("1", "true"),
        )


def _int(q: Mapping[str, str], name: str) -> int:
    raw = q.get(name, "")
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid {name} "{raw}": must be an integer') from None
    if value < 0:
        raise errors.bad_request(f"{name} must not be negative")
    return value


def parse_revision(raw: str, what: str = "resourceVersion") -> int:
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid {what} "{raw}"') from None


def scope_prefix(where: Where) -> str:
    tenant = "" if where.tenant == TENANT_ALL else where.tenant
    return where.rtype.key_prefix(tenant, where.namespace)


def make_predicate(rtype: ResourceType, opts: ListOptions) -> Predicate | None:
    """The object filter for the selectors, or None when every object matches."""
    if not opts.label_selector and not opts.field_selector:
        return None
    labels = parse_label_selector(opts.label_selector)
    fields = parse_field_selector(opts.field_selector, (*BASE_FIELDS, *rtype.field_labels))
    extra = rtype.field_labels

    def match(obj: Obj) -> bool:
        md = obj.get("metadata") or {}
        return labels.matches(md.get("labels")) and fields.matches(object_fields(obj, extra))

    return match


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Entry]
    revision: int
    continue_token: str
    remaining: int | None


def encode_token(rev: int, key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": rev, "start": key})).decode()


def _decode_token(token: str) -> tuple[int, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid") from None


def _take(pairs: Iterable[tuple[str, Entry]], pred: Predicate | None,
          limit: int) -> tuple[list[Entry], str, bool]:
    """Up to `limit` matching entries, the key of the last one, and whether more may match."""
    items: list[Entry] = []
    last = ""
    it: Iterator[tuple[str, Entry]] = iter(pairs)
    for key, entry in it:
        if pred is None or pred(entry.obj):
            if limit and len(items) == limit:
                return items, last, True
            items.append(entry)
            last = key
    return items, last, False


async def list_page(storage: Storage, cache_items: Callable[[str, str], Iterable[tuple[str, Entry]]],
                    cache_revision: int, where: Where, opts: ListOptions) -> Page:
    """One page of a list (all of it when `opts.limit` is 0)."""
    prefix = scope_prefix(where)
    pred = make_predicate(where.rtype, opts)
    if opts.continue_token:
        rev, start = _decode_token(opts.continue_token)
    else:
        rev, start = cache_revision, ""
    if rev == cache_revision:
        items, last, more = _take(cache_items(prefix, start), pred, opts.limit)
    else:
        items, last, more = await _from_storage(storage, prefix, rev, start, pred, opts.limit)
    token = encode_token(rev, last) if more else ""
    return Page(items, rev, token, None)


async def _from_storage(storage: Storage, prefix: str, rev: int, start: str,
                        pred: Predicate | None, limit: int) -> tuple[list[Entry], str, bool]:
    """Matching entries from storage at revision `rev` after key `start`."""
    items: list[Entry] = []
    last = start
    while True:
        try:
            kvs, _, more = await storage.range(prefix, revision=rev, start_after=last,
                                               limit=max(limit, 500))
        except Compacted:
            raise errors.gone("The provided continue parameter is too old to display a "
                              "consistent list result. You can start a new list without the "
                              "continue parameter.") from None
        got, last_key, full = _take(((kv.key, decode(kv)) for kv in kvs), pred,
                                    limit - len(items) if limit else 0)
        items += got
        if full:
            return items, last_key, True
        if not more:
            return items, last_key if got else last, False
        last = kvs[-1].key
        if limit and len(items) == limit:
            return items, last_key, True
