"""``GET /v1/tasks?offset=&limit=``: one page of the nodes, the whole list without parameters, the
total in ``X-Total-Count``, and a 400 naming the parameter for anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.api.app import ApiApp
from es_framework.api.pages import MAX_LIMIT, page
from es_framework.dev.fake_api import FakeCore
from tests.api.http_call import call


def refuse(status: int, message: str) -> Exception:
    return ValueError(status, message)


@given(total=st.integers(0, 50), offset=st.integers(0, 60), limit=st.integers(1, MAX_LIMIT))
def test_a_page_is_the_slice_and_the_total_is_the_whole(total: int, offset: int, limit: int) -> None:
    items = list(range(total))
    shown, headers = page(f"offset={offset}&limit={limit}", items, refuse)
    assert list(shown) == items[offset : offset + limit]
    assert headers == (("X-Total-Count", str(total)),)
    assert list(page("", items, refuse)[0]) == items  # no parameter: everything, as before


@pytest.mark.parametrize(
    "query", ["offset=-1", "offset=x", "limit=0", f"limit={MAX_LIMIT + 1}", "limit=", "offset=1&offset=2", "limit=1.5"]
)
def test_anything_but_one_whole_number_in_range_is_refused_naming_the_parameter(query: str) -> None:
    with pytest.raises(ValueError) as refused:
        page(query, [1, 2, 3], refuse)
    assert refused.value.args[0] == 400 and query.split("=", maxsplit=1)[0] in refused.value.args[1]


def test_the_tasks_endpoint_pages_and_says_the_total() -> None:
    app = ApiApp(FakeCore())
    whole = call(app, "GET", "/v1/tasks")
    everything = whole.json()
    assert whole.status == 200 and len(everything) >= 2
    assert whole.headers["X-Total-Count"] == str(len(everything))
    second = call(app, "GET", "/v1/tasks?offset=1&limit=1")
    assert second.status == 200 and second.json() == everything[1:2]
    assert call(app, "GET", "/v1/tasks?limit=0").status == 400
