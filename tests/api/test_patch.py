"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and `apply_patch` (strategic merge patch
itself: test_strategic.py)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from arktos.api.errors import StatusError
from arktos.api.patch import apply_patch, json_equal, json_patch, merge_patch

_SCALARS = (st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
            | st.text(max_size=4))
JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=12)
JSON_OBJECTS = st.dictionaries(st.text(max_size=3), JSON, max_size=4)


def raises_status(code: int, fn: Any, *args: Any) -> str:
    """Call `fn(*args)`, expect a StatusError with `code`, return its message."""
    with pytest.raises(StatusError) as excinfo:
        fn(*args)
    reasons = {400: "BadRequest", 415: "UnsupportedMediaType", 422: "Invalid"}
    assert (excinfo.value.code, excinfo.value.reason) == (code, reasons[code])
    return str(excinfo.value.message)


# ------------------------------------------------------------------------------- merge patch

RFC7386_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_APPENDIX_A)
def test_merge_patch_rfc7386_appendix_a(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_rfc7386_section_3() -> None:
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
              "tags": ["example", "sample"], "content": "This will be unchanged"}
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890",
             "author": {"familyName": None}, "tags": ["example"]}
    assert merge_patch(target, patch) == {
        "title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
        "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"}


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target = {"keep": {"x": [1]}, "a": 1}
    patch = {"new": {"y": [2]}, "list": [{"z": 1}]}
    result = merge_patch(target, patch)
    result["keep"]["x"].append(9)
    result["new"]["y"].append(9)
    result["list"][0]["z"] = 9
    assert target == {"keep": {"x": [1]}, "a": 1}
    assert patch == {"new": {"y": [2]}, "list": [{"z": 1}]}


@given(JSON_OBJECTS)
def test_merge_patch_empty_patch_is_identity(doc: dict[str, Any]) -> None:
    assert merge_patch(doc, {}) == doc


@given(JSON, JSON)
def test_merge_patch_does_not_mutate_and_is_idempotent(target: Any, patch: Any) -> None:
    before_t, before_p = copy.deepcopy(target), copy.deepcopy(patch)
    once = merge_patch(target, patch)
    assert target == before_t and patch == before_p
    assert merge_patch(once, patch) == once


# -------------------------------------------------------------------------------- JSON patch

RFC6902_APPENDIX_A = [
    ("A.1", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ("A.4", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ("A.6", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
     {"foo": "bar", "baz": "qux"}),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.16", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
]


@pytest.mark.parametrize(("name", "doc", "ops", "expected"), RFC6902_APPENDIX_A,
                         ids=[c[0] for c in RFC6902_APPENDIX_A])
def test_json_patch_rfc6902_appendix_a(name: str, doc: Any, ops: Any, expected: Any) -> None:
    assert json_patch(doc, ops) == expected


@pytest.mark.parametrize(("name", "doc", "ops", "fragment"), [
    ("A.9", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}],
     'test failed: the value at "/baz" is not "bar"'),
    ("A.12", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}],
     'path "/baz" does not exist'),
    ("A.15", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}],
     'the value at "/~01" is not "10"'),
], ids=["A.9", "A.12", "A.15"])
def test_json_patch_rfc6902_appendix_a_errors(name: str, doc: Any, ops: Any,
                                              fragment: str) -> None:
    assert fragment in raises_status(422, json_patch, doc, ops)


def test_json_patch_rfc6902_a13_duplicate_op_member() -> None:
    # A.13: `"op"` twice; a parser keeping the last member sees a remove of a missing path.
    body = b'[{"op": "add", "path": "/baz", "value": "qux", "op": "remove"}]'
    with pytest.raises(StatusError):
        apply_patch({"foo": "bar"}, body, "application/json-patch+json", "ConfigMap")


@pytest.mark.parametrize(("doc", "ops", "expected"), [
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"a": 1}, [{"op": "add", "path": "", "value": [1]}], [1]),
    ({"a": [1, 2]}, [{"op": "add", "path": "/a/2", "value": 3}], {"a": [1, 2, 3]}),
    ({"a": [1, 2]}, [{"op": "add", "path": "/a/0", "value": 0}], {"a": [0, 1, 2]}),
    ({"a": [1, 2]}, [{"op": "replace", "path": "/a/1", "value": None}], {"a": [1, None]}),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
    ({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    ({"a": {"b": 1}}, [{"op": "move", "from": "/a/b", "path": "/b"}], {"a": {}, "b": 1}),
    ({"a/b": {"~c": 1}}, [{"op": "remove", "path": "/a~1b/~0c"}], {"a/b": {}}),
    ({"": 1}, [{"op": "replace", "path": "/", "value": 2}], {"": 2}),
    ({"a": 1}, [{"op": "add", "path": "/a", "value": 2}], {"a": 2}),
    ({"a": [1]}, [{"op": "test", "path": "/a", "value": [1.0]}], {"a": [1]}),
    ({"a": 1}, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/a"},
                {"op": "test", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"a": 1}, [], {"a": 1}),
])
def test_json_patch_operations(doc: Any, ops: Any, expected: Any) -> None:
    assert json_patch(doc, ops) == expected


def test_json_patch_keeps_key_order_on_replace() -> None:
    assert list(json_patch({"a": 1, "b": 2}, [{"op": "replace", "path": "/a", "value": 3}])) \
        == ["a", "b"]


@pytest.mark.parametrize(("doc", "ops", "fragment"), [
    ({"a": 1}, [{"op": "remove", "path": "/b"}], 'path "/b" does not exist'),
    ({"a": 1}, [{"op": "replace", "path": "/b", "value": 1}], 'path "/b" does not exist'),
    ({"a": 1}, [{"op": "test", "path": "/b", "value": 1}], 'path "/b" does not exist'),
    ({"a": 1}, [{"op": "move", "from": "/b", "path": "/c"}], 'path "/b" does not exist'),
    ({"a": 1}, [{"op": "copy", "from": "/b", "path": "/c"}], 'path "/b" does not exist'),
    ({"a": 1}, [{"op": "add", "path": "/a/b", "value": 1}], 'path "/a" is not an object'),
    ({"a": 1}, [{"op": "test", "path": "/a/b", "value": 1}], 'path "/a/b" does not exist'),
    ({"a": [1]}, [{"op": "add", "path": "/a/2", "value": 1}], "index 2 out of range"),
    ({"a": [1]}, [{"op": "remove", "path": "/a/1"}], "index 1 out of range"),
    ({"a": [1]}, [{"op": "replace", "path": "/a/-", "value": 1}], 'invalid array index "-"'),
    ({"a": [1]}, [{"op": "remove", "path": "/a/01"}], 'invalid array index "01"'),
    ({"a": [1]}, [{"op": "remove", "path": "/a/-1"}], 'invalid array index "-1"'),
    ({"a": [1]}, [{"op": "remove", "path": "/a/x"}], 'invalid array index "x"'),
    ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], "into its own child"),
    ({"a": 1}, [{"op": "remove", "path": ""}], "whole document"),
    ({"a": True}, [{"op": "test", "path": "/a", "value": 1}], "is not 1"),
    ({"a": 1}, [{"op": "test", "path": "/a", "value": True}], "is not true"),
    ({"a": None}, [{"op": "test", "path": "/a", "value": {}}], "is not {}"),
])
def test_json_patch_does_not_apply(doc: Any, ops: Any, fragment: str) -> None:
    assert fragment in raises_status(422, json_patch, doc, ops)


@pytest.mark.parametrize(("ops", "fragment"), [
    ({"op": "add"}, "must be a JSON array"),
    (None, "must be a JSON array"),
    (["add"], "operation 0 is not an object"),
    ([{"path": "/a"}], 'operation 0 has an unknown or missing "op": null'),
    ([{"op": "add", "path": "/a", "value": 1}, {"op": "frob", "path": "/a"}],
     'operation 1 has an unknown or missing "op": "frob"'),
    ([{"op": "remove"}], 'operation "remove" needs a "path" member'),
    ([{"op": "add", "path": "/a"}], 'operation "add" needs a "value" member'),
    ([{"op": "test", "path": "/a"}], 'operation "test" needs a "value" member'),
    ([{"op": "move", "path": "/a"}], 'operation "move" needs a "from" member'),
    ([{"op": "copy", "path": "/a"}], 'operation "copy" needs a "from" member'),
    ([{"op": "remove", "path": 1}], '"path" must be a string'),
    ([{"op": "copy", "path": "/b", "from": ["a"]}], '"from" must be a string'),
    ([{"op": "remove", "path": "a"}], 'invalid JSON pointer "a"'),
    ([{"op": "remove", "path": "/a~2"}], "invalid escape"),
    ([{"op": "remove", "path": "/a~"}], "invalid escape"),
])
def test_json_patch_malformed(ops: Any, fragment: str) -> None:
    assert fragment in raises_status(400, json_patch, {"a": 1}, ops)


def test_json_patch_is_all_or_nothing_and_shares_nothing() -> None:
    doc = {"a": {"b": [1]}}
    value = {"v": [1]}
    with pytest.raises(StatusError):
        json_patch(doc, [{"op": "remove", "path": "/a/b"}, {"op": "remove", "path": "/zz"}])
    assert doc == {"a": {"b": [1]}}
    result = json_patch(doc, [{"op": "add", "path": "/c", "value": value},
                              {"op": "copy", "from": "/a", "path": "/d"}])
    result["c"]["v"].append(2)
    result["d"]["b"].append(2)
    result["a"]["b"].append(3)
    assert value == {"v": [1]} and doc == {"a": {"b": [1]}}


_PATHS = st.sampled_from(["", "/a", "/a/0", "/a/-", "/a/b", "/0", "/-", "/b/1", "/~1", "/"])
_OPS = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]),
     "path": _PATHS},
    optional={"value": JSON, "from": _PATHS}), max_size=4)


@given(JSON, _OPS)
def test_json_patch_never_mutates_input(doc: Any, ops: list[dict[str, Any]]) -> None:
    before_doc, before_ops = copy.deepcopy(doc), copy.deepcopy(ops)
    try:
        json_patch(doc, ops)
    except StatusError as e:
        assert e.code in (400, 422)
    assert doc == before_doc and ops == before_ops


@given(JSON_OBJECTS, st.text(max_size=4), JSON)
def test_json_patch_add_then_remove_is_identity(doc: dict[str, Any], key: str,
                                                value: Any) -> None:
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    added = json_patch(doc, [{"op": "add", "path": pointer, "value": value}])
    assert json_equal(added[key], value)
    if key not in doc:
        assert json_patch(added, [{"op": "remove", "path": pointer}]) == doc


@pytest.mark.parametrize(("a", "b", "equal"), [
    (1, 1.0, True), (True, 1, False), (0, False, False), (None, None, True), ("1", 1, False),
    ({"a": [1, {"b": 2}]}, {"a": [1.0, {"b": 2}]}, True), ({"a": 1}, {"b": 1}, False),
    ([1, 2], [1], False), ({}, [], False), (True, True, True),
])
def test_json_equal(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal


# -------------------------------------------------------------------------------- apply_patch

@pytest.mark.parametrize("content_type", [
    "application/merge-patch+json", "application/merge-patch+json; charset=utf-8",
    "Application/Merge-Patch+JSON"])
def test_apply_merge_patch(content_type: str) -> None:
    body = b'{"metadata": {"labels": {"a": null, "b": "2"}}}'
    target = {"metadata": {"labels": {"a": "1"}}}
    assert apply_patch(target, body, content_type, "Pod") == {"metadata": {"labels": {"b": "2"}}}
    assert apply_patch(target, body.decode(), content_type, "Pod") == {
        "metadata": {"labels": {"b": "2"}}}
    assert apply_patch(target, orjson.loads(body), content_type, "Pod") == {
        "metadata": {"labels": {"b": "2"}}}


def test_apply_json_patch() -> None:
    body = b'[{"op": "replace", "path": "/spec/replicas", "value": 3}]'
    assert apply_patch({"spec": {"replicas": 1}}, body, "application/json-patch+json",
                       "Deployment") == {"spec": {"replicas": 3}}


def test_apply_strategic_patch_on_merge_patch_differs() -> None:
    target = {"spec": {"containers": [{"name": "a", "image": "1"}]}}
    body = b'{"spec": {"containers": [{"name": "b", "image": "2"}]}}'
    smp = apply_patch(target, body, "application/strategic-merge-patch+json", "Pod")
    mp = apply_patch(target, body, "application/merge-patch+json", "Pod")
    assert len(smp["spec"]["containers"]) == 2 and len(mp["spec"]["containers"]) == 1


@pytest.mark.parametrize(("content_type", "fragment"), [
    ("application/apply-patch+yaml", "server-side apply"),
    ("application/json", 'got "application/json"'),
    ("text/plain", "application/strategic-merge-patch+json"),
    ("", 'got ""'),
])
def test_apply_patch_unsupported_media_type(content_type: str, fragment: str) -> None:
    assert fragment in raises_status(415, apply_patch, {}, b"{}", content_type, "Pod")


@pytest.mark.parametrize(("body", "content_type", "fragment"), [
    (b"{not json", "application/merge-patch+json", "not valid JSON"),
    (b"", "application/json-patch+json", "not valid JSON"),
    (b'{"op": "add"}', "application/json-patch+json", "must be a JSON array"),
    (b"[1]", "application/strategic-merge-patch+json", "must be a JSON object"),
    (b'"x"', "application/merge-patch+json", "patched document must be a JSON object"),
    (b'[{"op": "replace", "path": "", "value": 1}]', "application/json-patch+json",
     "patched document must be a JSON object"),
])
def test_apply_patch_bad_body(body: bytes, content_type: str, fragment: str) -> None:
    assert fragment in raises_status(400, apply_patch, {"a": 1}, body, content_type, "Pod")


def test_apply_patch_json_patch_failure_is_422() -> None:
    body = b'[{"op": "test", "path": "/a", "value": 2}]'
    raises_status(422, apply_patch, {"a": 1}, body, "application/json-patch+json", "Pod")
