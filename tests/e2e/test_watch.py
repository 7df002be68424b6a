"""Watch semantics: resume from a resourceVersion, initial events, selectors, bookmarks."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.e2e.rest import Rest, configmap


def _collect(rest: Rest, path: str, **params: Any) -> tuple[threading.Thread, list[Any]]:
    events: list[Any] = []

    def consume() -> None:
        events.extend(rest.watch(path, **params))

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.3)
    return t, events


def test_watch_from_resource_version_sees_every_change(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv = rest.ok(rest.post(base, configmap("early")))["metadata"]["resourceVersion"]
    created = rest.ok(rest.post(base, configmap("w")))
    created["data"] = {"k": "2"}
    rest.ok(rest.put(f"{base}/w", created))
    rest.ok(rest.delete(f"{base}/w"))
    events = list(rest.watch(base, resourceVersion=rv, timeoutSeconds=1))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revs == sorted(revs) and revs[0] > int(rv)


def test_watch_without_version_starts_with_current_state(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rest.ok(rest.post(base, configmap("a")))
    t, events = _collect(rest, base, timeoutSeconds=2)
    rest.ok(rest.post(base, configmap("b")))
    t.join()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"), ("ADDED", "b")]


def test_watch_with_label_selector_sees_objects_leave(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv = rest.ok(rest.get(base))["metadata"]["resourceVersion"]
    obj = rest.ok(rest.post(base, configmap("s", labels={"keep": "yes"})))
    obj["metadata"]["labels"] = {"keep": "no"}
    rest.ok(rest.put(f"{base}/s", obj))
    rest.ok(rest.post(base, configmap("other", labels={"keep": "no"})))
    events = list(rest.watch(base, resourceVersion=rv, labelSelector="keep=yes",
                             timeoutSeconds=1))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "s"), ("DELETED", "s")]


def test_watch_single_object_by_name(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv = rest.ok(rest.get(base))["metadata"]["resourceVersion"]
    rest.ok(rest.post(base, configmap("one")))
    rest.ok(rest.post(base, configmap("two")))
    events = list(rest.watch(f"{base}/one", resourceVersion=rv, timeoutSeconds=1))
    assert [e["object"]["metadata"]["name"] for e in events] == ["one"]


def test_bookmarks_when_asked(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv = rest.ok(rest.get(base))["metadata"]["resourceVersion"]
    events = list(rest.watch(base, resourceVersion=rv, allowWatchBookmarks="true",
                             timeoutSeconds=3))
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert int(events[-1]["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_send_initial_events_ends_with_marked_bookmark(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rest.ok(rest.post(base, configmap("i")))
    events = list(rest.watch(base, sendInitialEvents="true", allowWatchBookmarks="true",
                             resourceVersionMatch="NotOlderThan", timeoutSeconds=1))
    assert events[0]["type"] == "ADDED" and events[1]["type"] == "BOOKMARK"
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}
