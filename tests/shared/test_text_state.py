"""TextState: what a panel shows after any sequence of steps."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from airquill.shared.step import Step, TokenChange
from airquill.shared.text_state import TextState, noise_width


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 30), st.lists(st.tuples(st.integers(0, 29), st.booleans()), max_size=8)),
                max_size=15))
def test_settled_count_and_changes_follow_the_steps(steps):
    state = TextState()
    touched: set[int] = set()
    for index, (length, changes) in enumerate(steps):
        valid = tuple(TokenChange(p, 1, "w" if settled else "", 1.0, 0.0 if settled else 1.0)
                      for p, settled in changes if p < length)
        state.apply(Step(index, len(steps), length, valid))
        touched |= {c.position for c in valid}
        assert state.settled == sum(1 for cell in state.cells if cell.noise == 0.0)
        assert len(state.cells) == length
    assert touched <= state.take_changes() | set(range(31))
    assert state.take_changes() == set()


def test_noise_width_is_stable_and_bounded():
    widths = [noise_width(p) for p in range(1000)]
    assert set(widths) <= {2, 3, 4, 5} and len(set(widths)) == 4
    assert widths == [noise_width(p) for p in range(1000)]
