"""Context windows: stickyctx's ``window()`` next to LangChain's ``trim_messages``, same messages.

One process, one run, side by side: histories of 100, 1,000 and 10,000 chat messages (alternating
user and assistant, English-like text of 20-400 tokens, a few tool-call groups), an 8,000-token
budget, and

* stickyctx ``window()`` through a ``SyncConversation`` on the memory store, on a handle whose
  snapshot is already loaded, and on a fresh handle per call (turn lease, load, window, release:
  what one request pays);
* ``langchain_core.messages.trim_messages(strategy="last", start_on="human",
  include_system=True)`` with a tiktoken counter that counts like OpenAI's cookbook: it turns
  each LangChain message back into the OpenAI dict and counts it with stickyctx's own
  ``Tokenizer.count_messages`` (same encoding, same rule, so both sides agree on every count);
* one ``append("user", ...)`` on a fresh handle at each history size;
* prefix stability over a simulated conversation (append user, window, append assistant,
  finish), for both eviction policies, both pruning modes and two budgets.

    python benchmarks/windows.py            # full run (under three minutes)
    python benchmarks/windows.py --quick    # under twenty seconds, noisier
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _machine import describe  # a sibling module: benchmarks run as scripts
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)

from stickyctx import Settings, SyncConversation
from stickyctx.core.flow import SessionState
from stickyctx.core.ids import new_session_id
from stickyctx.core.messages import NewMessage, build_message
from stickyctx.core.tokenizer import Tokenizer
from stickyctx.sansio import run_sync
from stickyctx.session.logic import Session
from stickyctx.session.services import Services
from stickyctx.stores.memory import MemoryStore

BUDGET = 8000
SYSTEM = "You are a helpful assistant. Answer briefly and precisely, and say when you are unsure."
ns = time.perf_counter_ns

# The variants of the window table, in print order (the smoke test checks them).
LOADED = "stickyctx window(), snapshot loaded"
FRESH = "stickyctx window(), fresh handle"
SUMMARIZED = "stickyctx window(), summarize mode, snapshot loaded"
TRIM = "trim_messages"
APPEND = "stickyctx append(user), fresh handle"
APPEND_SESSIONS = 20


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    window_calls: int  # timed stickyctx window() calls per size and variant
    trim_calls: dict[int, int]  # timed trim_messages calls per size
    appends: int  # timed appends per size
    turns: int  # turns of the prefix-stability simulation


FULL = Plan((100, 1_000, 10_000), 2000, {100: 40, 1_000: 12, 10_000: 5}, 400, 300)
QUICK = Plan((100, 1_000, 10_000), 300, {100: 8, 1_000: 3, 10_000: 1}, 100, 120)

# Text ---------------------------------------------------------------------------------------

_VOCABULARY = (
    "the of and to in is that it for on with as was be by this are or from at an have not "
    "but can which all will one there their more if would about so what when up out into "
    "time some could them other than then now only its also after use two how our work "
    "first well way even new want because any these give day most us data model request "
    "server context budget token session message reply answer question cache memory "
    "deploy latency window summary history store node user team plan report test error "
    "value result change build number order price meeting project release draft budget "
    "travel flight hotel weather recipe garden invoice contract schedule review"
)
_WORDS = tuple(_VOCABULARY.split())
_NAMES = ("Alice", "Paris", "Berlin", "Monday", "Redis", "Python", "Kubernetes", "Maria",
          "Tokyo", "Friday", "Acme", "GitHub", "Lisbon", "Oscar")
_OPENERS = ("I think", "Please", "We decided", "Let's", "I prefer", "Remember that",
            "Could you", "It seems", "My name is", "The plan is", "Note that", "Usually")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
    if rng.random() < 0.35:
        words.insert(rng.randrange(len(words)), rng.choice(_NAMES))
    if rng.random() < 0.25:
        words.insert(rng.randrange(len(words)), str(rng.randint(2, 2030)))
    opener = rng.choice(_OPENERS) if rng.random() < 0.4 else words.pop(0).capitalize()
    return f"{opener} {' '.join(words)}{rng.choice('..........?!')}"


def _text(rng: random.Random, low: int, high: int) -> str:
    """English-like text of roughly ``low``..``high`` tokens (log-uniform)."""
    target = int(low * (high / low) ** rng.random())
    out: list[str] = []
    estimate = 0
    while estimate < target:
        sentence = _sentence(rng)
        out.append(sentence)
        estimate += int(len(sentence.split()) * 1.3) + 1
    return " ".join(out)


def _tool_group(rng: random.Random, turn: int) -> list[dict[str, Any]]:
    calls = []
    results = []
    for i in range(rng.choice((1, 1, 2))):
        call_id = f"call_{turn}_{i}"
        name, args = rng.choice((
            ("get_weather", {"city": rng.choice(_NAMES), "unit": "celsius"}),
            ("search_docs", {"query": " ".join(rng.choices(_WORDS, k=4)), "limit": 5}),
        ))
        calls.append({"id": call_id, "type": "function",
                      "function": {"name": name, "arguments": json.dumps(args)}})
        results.append({"role": "tool", "tool_call_id": call_id,
                        "content": json.dumps({"result": _text(rng, 20, 120)})})
    return [{"role": "user", "content": _text(rng, 20, 120)},
            {"role": "assistant", "content": None, "tool_calls": calls},
            *results,
            {"role": "assistant", "content": _text(rng, 40, 300)}]


@functools.cache
def history(size: int, seed: int = 7) -> list[dict[str, Any]]:
    """``size`` OpenAI-style messages: user/assistant turns, about one in 25 a tool-call group."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    while len(out) < size:
        if size - len(out) >= 8 and rng.random() < 0.04:
            out.extend(_tool_group(rng, len(out)))
        else:
            out.append({"role": "user", "content": _text(rng, 20, 200)})
            out.append({"role": "assistant", "content": _text(rng, 40, 400)})
    return out[:size]


# LangChain ----------------------------------------------------------------------------------

def to_langchain(messages: Sequence[dict[str, Any]]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for m in messages:
        if m["role"] == "user":
            out.append(HumanMessage(m["content"]))
        elif m["role"] == "system":
            out.append(SystemMessage(m["content"]))
        elif m["role"] == "tool":
            out.append(ToolMessage(m["content"], tool_call_id=m["tool_call_id"]))
        elif "tool_calls" in m:
            out.append(AIMessage("", tool_calls=[
                {"name": c["function"]["name"], "args": json.loads(c["function"]["arguments"]),
                 "id": c["id"], "type": "tool_call"} for c in m["tool_calls"]]))
        else:
            out.append(AIMessage(m["content"]))
    return out


def openai_dict(m: BaseMessage) -> dict[str, Any]:
    """The OpenAI chat dict of a LangChain message (the inverse of ``to_langchain``)."""
    if isinstance(m, HumanMessage):
        return {"role": "user", "content": m.content}
    if isinstance(m, SystemMessage):
        return {"role": "system", "content": m.content}
    if isinstance(m, ToolMessage):
        return {"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id}
    if isinstance(m, AIMessage) and m.tool_calls:
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
            for c in m.tool_calls]}
    return {"role": "assistant", "content": m.content}


def cookbook_counter(tokenizer: Tokenizer) -> Callable[[list[BaseMessage]], int]:
    def count(messages: list[BaseMessage]) -> int:
        return tokenizer.count_messages([openai_dict(m) for m in messages])
    return count


# stickyctx ----------------------------------------------------------------------------------

class CountingStore(MemoryStore):
    """The memory store, counting applied summaries (to tell inline folds from late ones)."""

    folds = 0

    def apply_summary(self, *args: Any, **kwargs: Any) -> Any:
        applied = yield from super().apply_summary(*args, **kwargs)
        self.folds += applied is not None
        return applied


@dataclass
class Bench:
    """One node's services and one memory store; sessions seeded through the store, used by
    handles."""

    settings: Settings
    engine: Services = field(init=False)
    store: CountingStore = field(init=False)

    def __post_init__(self) -> None:
        self.engine = Services(self.settings)
        self.store = CountingStore(max_session_tokens=self.settings.max_session_tokens,
                                   max_session_bytes=self.settings.max_session_bytes)

    def build(self, messages: Sequence[dict[str, Any]]) -> list[NewMessage]:
        limit = self.settings.max_message_bytes
        return [build_message(m["role"], m["content"],
                              {k: v for k, v in m.items() if k not in ("role", "content")},
                              self.engine.tokenizer, limit) for m in messages]


    def seed(self, built: Sequence[NewMessage]) -> str:
        """A new session holding ``built`` (one write); its id."""
        session_id = new_session_id()
        result = run_sync(self.store.append(self.engine.keys.derive(session_id), built,
                                            created=time.time()))
        assert result.status == "live"
        assert len(result.seqs) == len(built)
        assert not result.dropped
        return session_id

    def handle(self, session_id: str, *, auto_lock: bool = True,
               ) -> tuple[SyncConversation, Session]:
        """A request's handle on an existing session (an affinity hit, the turn lock on auto)."""
        state = SessionState(session_id, self.engine.node_id, int(time.time()), "hit", "cookie")
        logic = Session(self.engine, self.store, state, auto_lock=auto_lock)
        return SyncConversation(logic), logic

    def finish(self, logic: Session) -> None:
        run_sync(logic.end())


def _settings(**changes: Any) -> Settings:
    base: dict[str, Any] = {"secret_keys": ("bench-" + "k" * 40,), "node_id": "bench",
                            "token_budget": BUDGET}
    base.update(changes)
    return Settings(**base)


@functools.cache
def built_history(size: int, encoding: str) -> tuple[NewMessage, ...]:
    """``history(size)`` validated and counted once (what the app's appends stored)."""
    return tuple(Bench(_settings(encoding=encoding)).build(history(size)))


# Measurements -------------------------------------------------------------------------------

@dataclass
class WindowRow:
    size: int
    history_tokens: int
    runners: dict[str, Callable[[], None]]  # variant -> one call
    window_messages: int
    window_tokens: int
    same_as_trim: bool  # eviction="turn" and trim_messages pick the same messages
    samples: dict[str, list[int]] = field(default_factory=dict)  # variant -> ns per call


def _median(samples: Sequence[int]) -> float:
    return float(statistics.median(samples))


def prepare_windows(size: int) -> WindowRow:
    """The three window variants over one stored history of ``size`` messages, checked."""
    bench = Bench(_settings())
    messages = history(size)
    built = built_history(size, bench.engine.tokenizer.name)
    session_id = bench.seed(built)
    lc_messages = [SystemMessage(SYSTEM), *to_langchain(messages)]
    counter = cookbook_counter(bench.engine.tokenizer)

    # A handle that already holds the turn lease skips the lease on every later call; one
    # without the automatic lock skips it too, and leaves the lease to the fresh handles.
    loaded, _ = bench.handle(session_id, auto_lock=False)
    expected = loaded.window(system=SYSTEM)  # loads the snapshot

    def window_loaded() -> None:
        loaded.window(system=SYSTEM)

    def window_fresh() -> None:
        conv, logic = bench.handle(session_id)
        conv.window(system=SYSTEM)
        bench.finish(logic)

    def trim() -> None:
        trim_messages(lc_messages, max_tokens=BUDGET, strategy="last", token_counter=counter,
                      start_on="human", include_system=True)

    # The same history with pruning="summarize", once its evicted messages have been folded by
    # a first request (the built-in summarizer), then windowed on a loaded handle.
    folded = Bench(_settings(pruning="summarize"))
    folded_id = folded.seed(built)
    first, first_logic = folded.handle(folded_id)
    first.window(system=SYSTEM)
    folded.finish(first_logic)
    summarized, _ = folded.handle(folded_id, auto_lock=False)
    summarized.window(system=SYSTEM)

    def window_summarized() -> None:
        summarized.window(system=SYSTEM)

    # Warm-up; trim_messages on a short list (at 10,000 messages one call costs a timed one's).
    window_loaded()
    window_fresh()
    trim_messages(lc_messages[:40], max_tokens=BUDGET // 4, strategy="last",
                  token_counter=counter, start_on="human", include_system=True)

    # Check: with eviction="turn", stickyctx keeps exactly what trim_messages keeps (no system
    # prompt here: trim_messages counts the reply primer twice when it sets one aside).
    turn = Bench(_settings(eviction="turn"))
    turn_conv, turn_logic = turn.handle(turn.seed(built))
    ours = turn_conv.window()
    turn.finish(turn_logic)
    theirs = trim_messages(lc_messages[1:], max_tokens=BUDGET, strategy="last",
                           token_counter=counter, start_on="human")
    same = ours == [openai_dict(m) for m in theirs]

    return WindowRow(size, sum(m.tokens for m in built),
                     {LOADED: window_loaded, FRESH: window_fresh, SUMMARIZED: window_summarized,
                      TRIM: trim},
                     len(expected), bench.engine.tokenizer.count_messages([*expected]), same)


def measure_windows(rows: list[WindowRow], plan: Plan, rng: random.Random) -> None:
    """Rounds over every size and variant, in a shuffled order each round (drift hits all
    alike): one trim_messages call per size and round while that size still needs calls, and a
    batch of each stickyctx variant."""
    rounds = max(plan.trim_calls[r.size] for r in rows)
    batch = max(1, plan.window_calls // rounds)
    for row in rows:
        row.samples = {name: [] for name in row.runners}
    for index in range(rounds):
        work = [(row, name) for row in rows for name in row.runners
                if name != TRIM or index < plan.trim_calls[row.size]]
        rng.shuffle(work)
        for row, name in work:
            run = row.runners[name]
            times = row.samples[name]
            gc.collect()
            for _ in range(1 if name == TRIM else batch):
                started = ns()
                run()
                times.append(ns() - started)


def measure_appends(size: int, plan: Plan, rng: random.Random) -> list[int]:
    """One user message appended on a fresh handle (lease, count, append, release), round-robin
    over ``APPEND_SESSIONS`` sessions seeded with the same ``size`` messages, so that a history
    grows by at most ``plan.appends / APPEND_SESSIONS`` messages while it is measured."""
    bench = Bench(_settings())
    built = built_history(size, bench.engine.tokenizer.name)
    sessions = [bench.seed(built) for _ in range(APPEND_SESSIONS)]
    texts = [_text(rng, 20, 200) for _ in range(plan.appends)]
    samples = []
    gc.collect()
    for i, text in enumerate(texts):
        session_id = sessions[i % APPEND_SESSIONS]
        started = ns()
        conv, logic = bench.handle(session_id)
        conv.append("user", text)
        bench.finish(logic)
        samples.append(ns() - started)
    return samples


@dataclass
class PrefixRow:
    pruning: str
    eviction: str
    budget: int
    turns: int
    kept: int  # turns whose window starts with the previous turn's window
    kept_after: int  # the same, counted only once the window first evicted
    after: int  # turns after the first eviction
    fill: float  # mean window tokens / budget, once evicting
    folds_inline: int
    folds_late: int
    summary_breaks: int  # breaks where the window's messages kept their start: a new summary


def _split(window: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system prompt and summary, messages) of a window that starts with the system prompt."""
    head = 2 if len(window) > 1 and window[1]["role"] == "system" else 1
    return window[:head], window[head:]


def simulate(pruning: str, eviction: str, budget: int, turns: int) -> PrefixRow:
    bench = Bench(_settings(pruning=pruning, eviction=eviction, token_budget=budget))
    tokenizer = bench.engine.tokenizer
    rng = random.Random(11)
    session_id = bench.seed(bench.build([{"role": "user", "content": "Hello!"},
                                         {"role": "assistant", "content": "Hi, how can I help?"}]))
    previous: list[dict[str, Any]] | None = None
    kept = kept_after = after = inline = late = summary_breaks = 0
    fills: list[float] = []
    evicting = False
    for turn in range(turns):
        conv, logic = bench.handle(session_id)
        conv.append("user", _text(rng, 20, 200))
        before = bench.store.folds
        window = conv.window(system=SYSTEM)
        inline += bench.store.folds - before
        conv.append("assistant", _text(rng, 40, 400))
        before = bench.store.folds
        bench.finish(logic)
        late += bench.store.folds - before
        # Evicting: the window no longer holds every stored message (2 seeded, 2 per turn).
        head, body = _split(window)
        evicting = evicting or len(body) < 2 + 2 * turn + 1
        if previous is not None:
            prefix = window[:len(previous)] == previous
            kept += prefix
            previous_head, previous_body = _split(previous)
            summary_breaks += (not prefix and head != previous_head
                               and body[:1] == previous_body[:1])
            if evicting:
                kept_after += prefix
                after += 1
        if evicting:
            fills.append(tokenizer.count_messages([*window]) / budget)
        previous = window
    return PrefixRow(pruning, eviction, budget, turns - 1, kept, kept_after, after,
                     statistics.mean(fills) if fills else 0.0, inline, late, summary_breaks)


# Report -------------------------------------------------------------------------------------

def _time(value_ns: float) -> str:
    if value_ns >= 1e6:
        return f"{value_ns / 1e6:,.1f} ms"
    if value_ns < 1e4:
        return f"{value_ns / 1e3:.2f} µs"
    return f"{value_ns / 1e3:,.1f} µs"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "—"


def report(windows: list[WindowRow], appends: dict[int, list[int]],
           prefixes: list[PrefixRow]) -> str:
    head = "| | " + " | ".join(f"{r.size:,} messages" for r in windows) + " |"
    rule = "|---|" + "---:|" * len(windows)
    lines = ["### Window assembly (median per call, 8,000-token budget)", "", head, rule]
    lines.append("| history tokens | " + " | ".join(f"{r.history_tokens:,}" for r in windows)
                 + " |")
    for name in (LOADED, FRESH, SUMMARIZED, TRIM):
        lines.append(f"| {name} | "
                     + " | ".join(_time(_median(r.samples[name])) for r in windows) + " |")
    for name in (LOADED, FRESH):
        lines.append(f"| ratio trim_messages / {name.removeprefix('stickyctx ')} | " + " | ".join(
            f"{_median(r.samples[TRIM]) / _median(r.samples[name]):,.0f}×" for r in windows)
            + " |")
    lines.append("| window() per message in the window, snapshot loaded | " + " | ".join(
        _time(_median(r.samples[LOADED]) / r.window_messages) for r in windows) + " |")
    lines.append("| timed calls (loaded / fresh / summarize / trim) | " + " | ".join(
        " / ".join(str(len(r.samples[name])) for name in (LOADED, FRESH, SUMMARIZED, TRIM))
        for r in windows) + " |")
    lines.append("| window (block eviction): messages / tokens | " + " | ".join(
        f"{r.window_messages} / {r.window_tokens:,}" for r in windows) + " |")
    lines.append("| eviction=\"turn\" keeps what trim_messages keeps | " + " | ".join(
        "yes" if r.same_as_trim else "NO" for r in windows) + " |")
    lines += ["", "### One append (median per call)", "", head, rule]
    lines.append(f"| {APPEND} | " + " | ".join(_time(_median(appends[r.size])) for r in windows)
                 + " |")
    lines.append("| timed appends | " + " | ".join(str(len(appends[r.size])) for r in windows)
                 + " |")
    lines += ["", "### Prefix stability (append user, window, append assistant, finish)", "",
              "| pruning | eviction | budget | previous window is a prefix: all turns "
              "| once evicting | mean window fill once evicting | folds inline / after the "
              "response | breaks by a new summary alone |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for p in prefixes:
        summarize = p.pruning == "summarize"
        folds = f"{p.folds_inline} / {p.folds_late}" if summarize else "—"
        alone = str(p.summary_breaks) if summarize else "—"
        lines.append(f"| {p.pruning} | {p.eviction} | {p.budget:,} | {_share(p.kept, p.turns)} "
                     f"| {_share(p.kept_after, p.after)} | {100 * p.fill:.0f}% | {folds} "
                     f"| {alone} |")
    return "\n".join(lines)


def machine() -> str:
    return describe(("stickyctx", "tiktoken", "langchain-core"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short, noisier run")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")),
                        help="history sizes, comma-separated (default 100,1000,10000)")
    parser.add_argument("--turns", type=int, help="turns of the prefix simulation")
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round shuffle")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan = Plan(args.sizes, plan.window_calls,
                    {s: plan.trim_calls.get(s, 3) for s in args.sizes}, plan.appends, plan.turns)
    if args.turns:
        plan = Plan(plan.sizes, plan.window_calls, plan.trim_calls, plan.appends, args.turns)
    rng = random.Random(args.seed)

    began = time.monotonic()
    with warnings.catch_warnings():
        # Without network, stickyctx uses the identical offline copy of cl100k_base and warns.
        warnings.filterwarnings("ignore", "stickyctx. tiktoken encoding", RuntimeWarning)
        windows = [prepare_windows(size) for size in plan.sizes]
        measure_windows(windows, plan, rng)
        appends = {size: measure_appends(size, plan, rng) for size in plan.sizes}
        prefixes = [simulate(pruning, eviction, budget, plan.turns)
                    for pruning in ("sliding", "summarize")
                    for budget in (2000, 8000)
                    for eviction in ("block", "turn")]
    elapsed = time.monotonic() - began

    print("## Context windows")
    print()
    print(f"Machine: {machine()}.")
    print(f"Run: {'quick' if args.quick else 'full'}, {elapsed:.0f} s; medians. stickyctx on "
          f"the memory store with default settings (eviction=\"block\", low_water 0.75, "
          f"response_reserve 0), system prompt on both sides; trim_messages(strategy=\"last\", "
          f"start_on=\"human\", include_system=True) with a cookbook tiktoken counter "
          f"(cl100k_base). Sizes and variants interleave in rounds, shuffled each round. Appends "
          f"go round-robin to {APPEND_SESSIONS} sessions, each growing by at most "
          f"{-(-plan.appends // APPEND_SESSIONS)} messages. Prefix stability: {plan.turns} turns "
          f"of user 20-200 / assistant 40-400 tokens, a fresh handle per turn.")
    print()
    print(report(windows, appends, prefixes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
