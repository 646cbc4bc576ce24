"""Hypothesis against the list parser and the renderer: valid, half-valid and hostile pages.

Three promises, over generated list responses:
- `parse_page` returns a page or raises `MalformedResponse`, nothing else, whatever the
  bytes (huge numbers, NaN/Infinity tokens, negative timestamps, deep nesting, 10 kB
  names, control characters, wrong types);
- on a page of records whose validity we know, every valid record is kept, in order,
  and every invalid one is counted;
- whatever was kept renders to an exposition that both prometheus_client's text parser
  and its OpenMetrics parser accept, with every label value intact.

Inputs that once broke them have a regression test each at the end of this file.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition.formats import OPENMETRICS, TEXT
from exporter.exposition.render import Renderer
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus
from exporter.modelarts.demanager import parse_page
from exporter.modelarts.instance import Instance
from exporter.modelarts.notebooks import parse_notebooks_page
from exporter.modelarts.records import MalformedResponse, Page
from exporter.modelarts.statuses import KNOWN_STATUSES

PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
MIN_MS, MAX_MS = 946_684_800_000, 7_258_118_400_000  # models.py's accepted range, in ms
NOW = 1_800_000_000.0


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # the same search in CI as here
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


DELETE = object()  # a corruption that removes the field


class Raw:
    """JSON text spliced in as it is: tokens json.dumps cannot write (deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text


def to_json(doc: Any, ensure_ascii: bool = True) -> bytes:
    """json.dumps with Raw fragments spliced in; NaN and ±Infinity become raw tokens."""
    fragments: dict[str, str] = {}
    tag = uuid.uuid4().hex

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            key = f"@{tag}{len(fragments)}@"
            fragments[key] = value.text
            return key
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(doc), ensure_ascii=ensure_ascii, allow_nan=True)
    for key, fragment in fragments.items():
        text = text.replace(f'"{key}"', fragment)
    return text.encode("utf-8", "surrogatepass")


# -- values ----------------------------------------------------------------------------------

# Printable and not: every Unicode scalar value (lone surrogates: see the regression below).
chars = st.characters(codec="utf-8") | st.sampled_from('\x00\t\n\r\x1b\x7f\x85\u2028\ufeff\\"')
short_text = st.text(chars, max_size=24)
long_text = st.builds(lambda c, n: c * n, chars, st.integers(10_000, 10_240))  # 10 kB names
texts = st.one_of(short_text, short_text, long_text)
nonempty = st.one_of(
    st.sampled_from(KNOWN_STATUSES), st.text(chars, min_size=1, max_size=24), long_text
)
valid_ms = st.integers(MIN_MS, MAX_MS)
finite = st.floats(allow_nan=False, allow_infinity=False)
int_in_float_range = st.integers(-(2**1020), 2**1020)

VALID: dict[str, st.SearchStrategy[Any]] = {
    # `Text` takes strings and integers; null is an empty string.
    "text": st.one_of(st.none(), texts, st.integers(-(10**30), 10**30)),
    "timestamp": st.one_of(
        st.none(), st.just(""), valid_ms, valid_ms.map(str), valid_ms.map(float)
    ),
    "number": st.one_of(st.none(), st.just(""), finite, int_in_float_range, finite.map(repr)),
    "bool": st.one_of(st.none(), st.booleans()),
}
INVALID: dict[str, list[Any]] = {
    "required": [DELETE, "", None, 123, [], True, {"a": 1}],
    "text": [2.5, True, [], {"a": 1}],
    "timestamp": [
        -1,
        MIN_MS - 1,
        MAX_MS + 1,
        "abc",
        True,
        math.nan,
        math.inf,
        -math.inf,
        1e300,
        [],
        {},
        10**400,
    ],
    "number": [
        "abc",
        True,
        math.nan,
        math.inf,
        -math.inf,
        "1e999",
        "NaN",
        [1],
        {"v": 1},
        10**400,
        -(10**400),
    ],
    "bool": ["maybe", 5, [], {}, 2.5],
    "object": ["text", 5, [1], True],
}
# The fields of a list record that models.py reads: a kind for leaves, a dict for objects.
SCHEMA: dict[str, Any] = {
    "name": "text",
    "flavor": "text",
    "error_code": "text",
    "creation_timestamp": "timestamp",
    "latest_update_timestamp": "timestamp",
    "flavor_details": {
        "name": "text",
        "status": "text",
        "type": "text",
        "promo_type": "text",
        "queuing_num": "number",
        "queue_left_time": "number",
    },
    "profile": {
        "flavor_type": "text",
        "provision": {"spec": {"params": {"image_name": "text", "image_tag": "text"}}},
    },
    "pool": {"id": "text", "name": "text", "type": "text"},
    "workspace": {"id": "text", "name": "text"},
    "user": {"id": "text", "name": "text"},
    "spec": {
        "auto_stop": {
            "enable": "bool",
            "duration": "number",
            "stop_timestamp": "timestamp",
            "remain_time": "number",
        },
        "failed_reasons": {"code": "text", "message": "text"},
    },
    "queuing_info": {
        "status": "text",
        "rank": "number",
        "begin_timestamp": "timestamp",
        "end_timestamp": "timestamp",
        "remain_time": "number",
    },
}


def _paths(
    schema: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    for name, kind in schema.items():
        if isinstance(kind, dict):
            found.append(((*prefix, name), "object"))
            found.extend(_paths(kind, (*prefix, name)))
        else:
            found.append(((*prefix, name), kind))
    return found


PATHS = [(("id",), "required"), (("status",), "required"), *_paths(SCHEMA)]


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON, NaN and Infinity included."""
    scalars = st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), short_text, long_text)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(short_text, inner, max_size=4),
        max_leaves=max_leaves,
    )


def deep(depth: st.SearchStrategy[int]) -> st.SearchStrategy[Raw]:
    return depth.map(lambda d: Raw("[" * d + "]" * d))


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: _field(v) for k, v in schema.items()})


def _field(kind: Any) -> st.SearchStrategy[Any]:
    if isinstance(kind, dict):
        return st.one_of(st.none(), _object(kind))
    return VALID[kind]


def valid_record(record_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """A record models.py must read, unknown fields (some deeply nested) included."""
    optional = {k: _field(v) for k, v in SCHEMA.items()}
    optional["unknown"] = json_values()
    optional["nested_unknown"] = deep(st.integers(1, 300))
    return st.fixed_dictionaries({"id": st.just(record_id), "status": nonempty}, optional=optional)


def set_path(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = record
    for name in path[:-1]:
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def invalid_record(draw: st.DrawFn) -> Any:
    """A record models.py must skip: a valid one with one field surely wrong, or no object."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, 5, "DE-1", [], True, [{"id": "x", "status": "R"}]]))
    record = draw(valid_record(draw(st.text(chars, min_size=1, max_size=12))))
    path, kind = draw(st.sampled_from([p for p in PATHS if p[1] in INVALID]))
    set_path(record, path, draw(st.sampled_from(INVALID[kind])))
    return record


valid_totals = st.one_of(
    st.none(), st.integers(0, 10**18), st.integers(0, 10**6).map(str), st.just(10**400)
)


@st.composite
def known_page(draw: st.DrawFn) -> tuple[bytes, list[str], int]:
    """A page of records whose validity is known: (body, valid ids in order, invalid count)."""
    ids = draw(st.lists(st.one_of(short_text.filter(bool), long_text), max_size=6, unique=True))
    valid = [draw(valid_record(i)) for i in ids]
    invalid = draw(st.lists(invalid_record(), max_size=4))
    slots = draw(st.permutations([True] * len(valid) + [False] * len(invalid)))
    records, v, i = [], iter(valid), iter(invalid)
    for is_valid in slots:
        records.append(next(v) if is_valid else next(i))
    doc: dict[str, Any] = {"total_count": draw(valid_totals), "instances": records}
    if not records and draw(st.booleans()):
        doc["instances"] = None
    body = to_json(doc, ensure_ascii=draw(st.booleans()))
    return body, ids, len(invalid)


# -- hostile pages ------------------------------------------------------------------------------


def hostile_value(kind: str) -> st.SearchStrategy[Any]:
    generic = st.one_of(json_values(), deep(st.integers(1, 3000)))
    options = [generic, st.sampled_from(INVALID.get(kind, INVALID["object"]))]
    if kind in VALID:
        options.append(VALID[kind])
    return st.one_of(*options)


@st.composite
def hostile_record(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 7)) == 0:
        return draw(json_values(max_leaves=12))  # any JSON at all where a record should be
    record = draw(valid_record(draw(short_text.filter(bool))))
    for path, kind in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=4)):
        set_path(record, path, draw(hostile_value(kind)))
    return record


hostile_totals = st.one_of(
    valid_totals,
    st.sampled_from(["abc", -1, "-5", math.nan, True, 1.5, "1.5", -(10**30)]),
    st.sampled_from([math.inf, -math.inf, [], {}]),
)


@st.composite
def hostile_body(draw: st.DrawFn) -> bytes:
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(st.binary(max_size=300))
    if shape == 1:
        return to_json(draw(json_values(max_leaves=20)))
    doc: dict[str, Any] = {
        "total_count": draw(hostile_totals),
        "instances": draw(st.lists(hostile_record(), max_size=5)),
    }
    if shape == 2:
        doc["instances"] = draw(st.one_of(json_values(), deep(st.integers(1, 5000))))
    if shape == 3:
        doc = {k: v for k, v in doc.items() if draw(st.booleans())}
    body = to_json(doc, ensure_ascii=draw(st.booleans()))
    if shape == 4:  # cut anywhere, or trailed by garbage
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=8))
    return body


# -- the checks ------------------------------------------------------------------------------


def render_and_parse(instances: list[Instance]) -> None:
    """Both formats pass both parsers and carry each instance's labels intact."""
    unique = list({i.id: i for i in instances}.values())  # the client de-duplicates by id
    snapshot = Snapshot(PROJECT, tuple(unique), NOW - 5)
    status = TargetStatus(PROJECT, snapshot, up=True, last_success=NOW - 5)
    renderer = Renderer(lambda: [status], clock=lambda: NOW)
    for fmt, parse in ((TEXT, parse_text), (OPENMETRICS, parse_om)):
        text = bytes(renderer.render(fmt)).decode("utf-8")
        families = list(parse(text))
        info = [
            sample.labels
            for family in families
            for sample in family.samples
            if sample.name == "modelarts_notebook_instance_info"
        ]
        assert sorted((labels["id"], labels["name"]) for labels in info) == sorted(
            (i.id, i.name) for i in unique
        ), fmt.name
        for family in families:
            for sample in family.samples:
                assert not math.isinf(sample.value), (fmt.name, sample)


def check_instance(instance: Instance) -> None:
    """What a kept record guarantees to the metrics: ids and statuses, sane numbers."""
    assert isinstance(instance.id, str) and instance.id
    assert isinstance(instance.status, str) and instance.status
    # What the API gives is range-checked; what the exporter computes (the newer API's
    # stop time: start + lease) is at least finite.
    stamps = (instance.created, instance.updated, instance.queue_begin, instance.queue_end)
    for stamp in stamps:
        assert stamp is None or MIN_MS / 1000 <= stamp <= MAX_MS / 1000
    numbers = (
        instance.stop_timestamp,
        instance.queue_rank,
        instance.queue_end,
        instance.flavor_queue_length,
        instance.flavor_queue_left,
    )
    assert all(v is None or math.isfinite(v) for v in numbers)


@pytest.mark.slow  # thousands of examples: left out of scripts/check --fast
@fuzz(500)
@given(hostile_body())
@example(b"")
@example(b"null")
@example(b'{"total_count": NaN, "instances": [{"id": "a", "status": "R", "spec": null}]}')
@example(b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}")
@example(b'{"instances": [{"id": "a", "status": "R", "queuing_info": {"rank": -Infinity}}]}')
def test_parse_page_raises_nothing_but_malformed_response(body: bytes) -> None:
    try:
        page = parse_page(body)
    except MalformedResponse:
        return
    assert isinstance(page, Page)
    assert page.invalid >= 0 and (page.total_count is None or page.total_count >= 0)
    for instance in page.instances:
        check_instance(instance)
    render_and_parse(page.instances)


@pytest.mark.slow  # thousands of examples: left out of scripts/check --fast
@fuzz(400)
@given(known_page())
@example((b'{"total_count": 0, "instances": []}', [], 0))
@example((b'{"instances": [null, 5, {"id": "a", "status": "RUNNING"}]}', ["a"], 2))
def test_every_valid_record_is_kept_and_every_invalid_one_counted(
    case: tuple[bytes, list[str], int],
) -> None:
    body, ids, invalid = case
    page = parse_page(body)
    assert [i.id for i in page.instances] == ids
    assert page.invalid == invalid
    for instance in page.instances:
        check_instance(instance)
    render_and_parse(page.instances)


@fuzz(150)
@given(
    created=valid_ms,
    rank=finite,
    name=texts,
    status=st.sampled_from(["CREATE_QUEUING", "START_QUEUING"]),
)
@example(created=MIN_MS, rank=-0.0, name="", status="CREATE_QUEUING")
@example(created=MAX_MS, rank=1.7976931348623157e308, name='\\"\n', status="START_QUEUING")
def test_values_come_out_exactly_as_they_went_in(
    created: int, rank: float, name: str, status: str
) -> None:
    record = {
        "id": "DE-1",
        "status": status,
        "name": name,
        "creation_timestamp": str(created),
        "queuing_info": {"rank": rank},
    }
    page = parse_page(to_json({"instances": [record]}))
    assert [i.id for i in page.instances] == ["DE-1"]
    snapshot = Snapshot(PROJECT, tuple(page.instances), NOW)
    status_ = TargetStatus(PROJECT, snapshot, up=True)
    text = bytes(Renderer(lambda: [status_], clock=lambda: NOW).render(OPENMETRICS)).decode()
    samples = {s.name: s for family in parse_om(text) for s in family.samples if s.labels.get("id")}
    assert samples["modelarts_notebook_instance_created_timestamp_seconds"].value == created / 1000
    assert samples["modelarts_notebook_instance_queue_rank"].value == rank
    assert samples["modelarts_notebook_instance_info"].labels["name"] == name


@fuzz(100)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda records, total: to_json({"total": total, "pages": 1, "data": records}),
            st.lists(
                st.fixed_dictionaries(
                    {"id": short_text, "status": nonempty},
                    optional={
                        "name": hostile_value("text"),
                        "create_at": hostile_value("timestamp"),
                        "update_at": hostile_value("timestamp"),
                        "lease": st.one_of(
                            st.none(),
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "create_at": VALID["timestamp"],
                                    "enable": VALID["bool"],
                                    "duration": st.one_of(finite, int_in_float_range),
                                },
                            ),
                        ),
                        "image": st.one_of(st.none(), st.fixed_dictionaries({"name": texts})),
                    },
                ),
                max_size=4,
            ),
            hostile_totals,
        ),
    )
)
def test_the_notebooks_page_raises_nothing_but_malformed_response(body: bytes) -> None:
    try:
        page = parse_notebooks_page(body)
    except MalformedResponse:
        return
    for instance in page.instances:
        check_instance(instance)
    render_and_parse(page.instances)


# -- regressions: each input once broke a promise ----------------------------------------------


def _page(*records: dict[str, Any]) -> bytes:
    return to_json({"total_count": len(records), "instances": list(records)})


GOOD = {"id": "DE-good", "status": "RUNNING", "name": "kept"}


@pytest.mark.parametrize(
    "change",
    [
        {"queuing_info": {"rank": [1]}},
        {"spec": {"auto_stop": {"remain_time": {"v": 1}}}},
        {"creation_timestamp": []},
        {"flavor_details": {"queuing_num": {}}},
    ],
    ids=["rank-list", "remain-object", "created-list", "queuing-num-object"],
)
def test_a_container_in_a_number_field_skips_only_that_record(change: dict[str, Any]) -> None:
    page = parse_page(_page(GOOD, {"id": "DE-bad", "status": "RUNNING", **change}))
    assert [i.id for i in page.instances] == ["DE-good"] and page.invalid == 1


@pytest.mark.parametrize(
    "change",
    [{"creation_timestamp": 10**400}, {"queuing_info": {"rank": -(10**400)}}],
    ids=["timestamp", "rank"],
)
def test_a_number_beyond_float_range_skips_only_that_record(change: dict[str, Any]) -> None:
    page = parse_page(_page(GOOD, {"id": "DE-bad", "status": "RUNNING", **change}))
    assert [i.id for i in page.instances] == ["DE-good"] and page.invalid == 1


@pytest.mark.parametrize("total", [math.inf, -math.inf, [], {"n": 1}], ids=repr)
def test_an_unreadable_total_count_is_at_worst_a_malformed_response(total: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_page(to_json({"total_count": total, "instances": [GOOD]}))


def test_a_lone_surrogate_in_a_label_never_breaks_the_scrape() -> None:
    body = b'{"instances": [{"id": "DE-1", "status": "RUNNING", "name": "a\\ud800b"}]}'
    try:
        page = parse_page(body)
    except MalformedResponse:
        return  # refusing the page is acceptable too
    render_and_parse(page.instances)


def test_a_lease_of_any_length_gives_a_finite_stop_time() -> None:
    records = [
        {"id": "nb-good", "status": "RUNNING"},
        *(
            {
                "id": f"nb-{duration}",
                "status": "RUNNING",
                "lease": {"create_at": 1_700_000_000_000, "duration": duration},
            }
            for duration in (10**15, 1.7976931348623157e308, 0, -5)
        ),
    ]
    page = parse_notebooks_page(to_json({"data": records}))
    assert page.instances[0].id == "nb-good"
    for instance in page.instances:
        check_instance(instance)
    render_and_parse(page.instances)


def test_nesting_beyond_the_recursion_limit_is_a_malformed_response() -> None:
    """Documented limit: a page nested thousands deep is refused whole, never a crash."""
    body = b'{"instances": [{"id": "a", "status": "R", "x": ' + b"[" * 50_000 + b"]" * 50_000
    with pytest.raises(MalformedResponse):
        parse_page(body + b"}]}")
