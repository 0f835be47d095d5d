"""The mover SIGKILLed between the steps of a move (copy, verify, delete): the conversation is
never in neither tier, nothing of it is lost, and the next pass finishes the move."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from stickyctx.core.messages import build_message
from stickyctx.core.tokenizer import load_tokenizer
from tests.conftest import ROOT

from .conftest import Tiers

pytestmark = pytest.mark.slow


def msg(role: str, content: str) -> object:
    return build_message(role, content, {}, load_tokenizer("cl100k_base"), 1 << 20)


@pytest.mark.parametrize("step", ["copied", "verified", "deleted"])
def test_a_mover_killed_between_the_steps_loses_nothing(tiers: Tiers, step: str) -> None:
    key = tiers.new_key()
    tiers.calls.append(key, [msg("user", "q1"), msg("assistant", "a1")], created=time.time())
    tiers.age(key)
    env = {**os.environ, **tiers.env(),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    mover = subprocess.Popen(
        [sys.executable, "-m", "stickyctx.cli.main", "db", "move-cold", "--stop-after", step],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with mover:
        assert mover.stdout is not None
        assert mover.stderr is not None
        line = mover.stdout.readline().decode()  # blocks until the mover reaches the step
        if line.strip() != f"stopped after {step}":
            mover.kill()
            raise AssertionError(f"the mover did not stop there: {line!r} "
                                 f"{mover.stderr.read().decode()}")
        mover.kill()  # SIGKILL, between this step and the next
        mover.wait(timeout=10)

    in_redis, in_cold = tiers.in_redis(key), tiers.in_cold(key)
    assert in_redis or in_cold  # never in neither tier
    assert in_cold  # every step named comes after the copy
    assert in_redis == (step != "deleted")

    report = tiers.move()  # the next pass finishes what the killed one started
    assert report.moved == (1 if in_redis else 0)
    assert not tiers.in_redis(key)
    assert [m.content for m in tiers.calls.load(key).messages] == ["q1", "a1"]
