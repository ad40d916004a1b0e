"""The key registry: no two kinds of item can ever get the same key, and every builder spells its declared shape."""

from __future__ import annotations

import inspect
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.table import keys
from chalicelib.core.table.keys import SHAPES, Shape

ID = st.from_regex(r"[A-Za-z0-9_-]{1,24}", fullmatch=True)  # what an id may be (ids never hold '#')


def _parts(template: str) -> list[str]:
    return template.split("#")


def _is_field(part: str) -> bool:
    return part.startswith("{")


def _is_rest(part: str) -> bool:
    return part.endswith("*}")


def _literal_matches(part: str, other: str) -> bool:
    """Can ``part`` (one '#'-free segment of a key) equal ``other``'s segment?"""
    if _is_field(part) or _is_field(other):
        return True
    return part == other


def can_collide(a: str, b: str) -> bool:
    """Whether some filled-in key of template ``a`` can equal one of template ``b``.

    Segments are compared left to right; a ``{rest*}`` segment may swallow any number of segments
    (itself holding '#'), a ``{field}`` is any one non-empty segment, other segments are literal.
    A literal suffix glued to a field (``{day}#...``) is still a separate '#' segment.
    """
    pa, pb = _parts(a), _parts(b)
    for i in range(max(len(pa), len(pb))):
        if i >= len(pa) or i >= len(pb):
            return False
        x, y = pa[i], pb[i]
        if _is_rest(x) or _is_rest(y):
            # the rest of one may hold the other's remaining segments, if the segments so far matched
            return True
        if not _literal_matches(x, y):
            return False
    return True


def _partitions(attribute: str) -> dict[str, Shape]:
    return {name: shape for name, shape in SHAPES.items() if shape.attribute == attribute}


@pytest.mark.parametrize("attribute", ["PK", "GSI1PK", "GSI2PK"])
def test_no_two_partitions_can_share_a_key(attribute: str) -> None:
    # Given every partition key shape declared for this attribute
    shapes = _partitions(attribute)
    assert shapes, attribute
    # Then no two can ever be filled in to the same string
    clashes = [(a, b) for a, b in itertools.combinations(shapes, 2) if can_collide(shapes[a].template, shapes[b].template)]
    assert clashes == []


def test_no_two_sort_keys_of_one_partition_can_clash() -> None:
    # Given the sort keys, grouped by the partition they sort in
    by_partition: dict[str, list[str]] = {}
    for name, shape in SHAPES.items():
        if shape.attribute.endswith("SK"):
            assert shape.within in SHAPES, f"{name} sorts in an undeclared partition {shape.within!r}"
            assert SHAPES[shape.within].attribute == shape.attribute[:-2] + "PK", name
            by_partition.setdefault(shape.within, []).append(name)
    # Then within a partition no two item kinds can get the same sort key
    clashes = [
        (a, b)
        for names in by_partition.values()
        for a, b in itertools.combinations(names, 2)
        if can_collide(SHAPES[a].template, SHAPES[b].template)
    ]
    assert clashes == []


def test_the_collision_check_finds_real_collisions() -> None:
    # Given shapes that do clash, the check must say so (a check that always passes proves nothing)
    assert can_collide("APP#{app}#M#{member}", "APP#{app}#{kind}#{id}")
    assert can_collide("APP#{app}#REF#{kind}#{reference*}", "APP#{app}#REF#order#{id}")
    assert can_collide("LIMIT#{subject*}", "LIMIT#task#{id}")
    # and shapes that do not, that they cannot
    assert not can_collide("APP#{app}#M#{member}", "APP#{app}#NONCE#{nonce}")
    assert not can_collide("APP#{app}", "APP#{app}#M#{member}")
    assert not can_collide("GOODS#{goods}", "ORDER#{order}")


def test_every_shape_is_built_by_a_builder_and_no_builder_spells_a_key() -> None:
    source = inspect.getsource(keys)
    # Given the registry's own source: no builder spells a key with an f-string of its own
    assert re.findall(r'return f"[^"]*#', source) == []
    # Then every declared shape is built by some builder (GSI sort keys that reuse another key, and limit counters in
    # other partitions, are written by that key's builder: counter_sk)
    used = set(re.findall(r'key\(\s*"([a-z0-9.]+)"', source)) | {f"config.{kind}.sk" for kind in keys.CONFIG_KINDS}
    written_as_another_key = {"tenant.apps.gsi1.sk", "tenant.stores.gsi1.sk", "device.limit.sk", "tenant.limit.sk", "store.limit.sk"}
    assert set(SHAPES) - used == written_as_another_key


def _regex(template: str) -> re.Pattern[str]:
    pattern = "#".join(".+" if _is_rest(part) else "[^#]+" if _is_field(part) else re.escape(part) for part in _parts(template))
    return re.compile(pattern)


@given(app=ID, member=ID, other=ID, reference=st.from_regex(r"[A-Za-z0-9_.:#@/-]{1,40}", fullmatch=True))
def test_built_keys_match_their_shape_and_no_other_partition(app: str, member: str, other: str, reference: str) -> None:
    built = {
        "member": keys.member_pk(app, member),
        "guard": keys.app_guard_pk(app, "order", reference),
        "nonce": keys.nonce_pk(app, other),
        "stock": keys.stock_pk(app, other, 3),
        "order.index": keys.order_index_pk(app, other),
        "webhook.event": keys.webhook_event_pk(app, "wechatpay", reference),
        "fake.refund": keys.fake_refund_pk(app, reference),
        "app": keys.app_pk(app),
    }
    partitions = _partitions("PK")
    for name, value in built.items():
        assert _regex(SHAPES[name].template).fullmatch(value), (name, value)
        others = [n for n, shape in partitions.items() if n != name and _regex(shape.template).fullmatch(value)]
        assert others == [], (name, value, others)


def test_config_kinds_must_be_declared() -> None:
    assert keys.config_sk("task", "t_1") == "TASK#t_1"
    with pytest.raises(ValueError, match="undeclared config kind"):
        keys.config_sk("coupon", "c_1")
