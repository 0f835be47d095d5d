"""The read-only views behave as the lists they stand for, whatever their nesting.

A history is built up by ``appended`` (staged messages on a loaded one) and cut by ``without``
(a ceiling dropped the oldest); every view taken on the way is compared, item by item and slice
by slice, with a plain list of what it should hold, also after later views extended the lists
underneath it.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from stickyctx.core.views import appended, without

_steps = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(0, 5)),
    st.tuples(st.just("cut"), st.integers(0, 4)),
), max_size=12)
_slices = st.lists(st.tuples(st.none() | st.integers(-30, 30), st.none() | st.integers(-30, 30),
                             st.none() | st.sampled_from([1, 1, 2, -1, 3])), max_size=8)


def _same(view: Sequence[int], model: list[int], cuts: list[tuple[int | None, ...]]) -> None:
    assert len(view) == len(model)
    assert list(view) == model
    for i in range(-len(model), len(model)):
        assert view[i] == model[i]
    for start, stop, step in cuts:
        assert list(view[start:stop:step]) == model[start:stop:step], (start, stop, step)


@given(st.lists(st.integers(), max_size=6), _steps, _slices)
def test_views_hold_what_the_list_would(base: list[int], steps: list[tuple[str, int]],
                                        cuts: list[tuple[int | None, ...]]) -> None:
    view: Sequence[int] = list(base)
    model = list(base)
    taken: list[tuple[Sequence[int], list[int]]] = [(view, list(model))]
    counter = 1000
    for kind, n in steps:
        if kind == "append":
            added = list(range(counter, counter + n))
            counter += n
            view, model = appended(view, added), model + added
        else:  # (a ceiling drops stored messages: never more than there are)
            n = min(n, len(model))
            view, model = without(view, n), model[n:]
        taken.append((view, list(model)))
    for old_view, old_model in taken:  # every earlier view still holds what it held
        _same(old_view, old_model, cuts)
