"""Deterministic, realistic chat text: sentences of an everyday assistant conversation."""

from __future__ import annotations

import random

__all__ = ["assistant_text", "user_text"]

_ASKS = (
    "Can you help me plan a trip to {city} in {month}?",
    "What should I pack for {days} days of hiking near {city}?",
    "Could you rewrite this paragraph so it sounds less formal?",
    "How do I split a bill of {amount} dollars between {people} friends?",
    "Please remind me what we said about the budget for {city}.",
    "Is it better to take the train or fly from {city} to {other}?",
    "I need a short email to my landlord about the heating.",
    "What is a good vegetarian recipe that takes under {days}0 minutes?",
)
_FACTS = (
    "My flight lands at {hour} in the morning.",
    "We are {people} people and one of us is allergic to nuts.",
    "I would rather not spend more than {amount} dollars.",
    "The meeting moved to {month} {days}.",
    "I usually cook for {people} on weekdays.",
)
_ANSWERS = (
    "Sure, here is a plan for {city}: start with the old town, then take the river walk.",
    "For {days} days you will want layers, a rain jacket and comfortable boots.",
    "Each of the {people} friends pays {share} dollars, rounding up to the next cent.",
    "The train from {city} to {other} takes about {days} hours and is usually cheaper.",
    "Here is a friendlier version that keeps your main point but drops the jargon.",
    "A lentil curry works well: onions, garlic, lentils, tomatoes and a little cream.",
    "Dear landlord, the heating in my flat has not worked since {month}; could you send "
    "someone this week?",
)
_FOLLOW_UPS = (
    "Let me know if you want me to adjust anything.",
    "I can also make a packing checklist if that helps.",
    "Would you like a shorter version as well?",
    "Tell me which option you prefer and I will go on from there.",
)
_CITIES = ("Lisbon", "Kyoto", "Denver", "Oslo", "Nairobi", "Lima", "Porto", "Hanoi")
_MONTHS = ("March", "May", "June", "September", "October", "December")


def _fill(template: str, rng: random.Random) -> str:
    people = rng.randint(2, 9)
    amount = rng.randint(20, 900)
    return template.format(
        city=rng.choice(_CITIES), other=rng.choice(_CITIES), month=rng.choice(_MONTHS),
        days=rng.randint(2, 9), amount=amount, people=people, share=round(amount / people, 2),
        hour=rng.randint(5, 11),
    )


def _text(rng: random.Random, first: tuple[str, ...], rest: tuple[str, ...], low: int,
          high: int) -> str:
    text = _fill(rng.choice(first), rng)
    while len(text) < low:
        text += " " + _fill(rng.choice(rest), rng)
    return text[:high]


def user_text(rng: random.Random, low: int = 100, high: int = 300) -> str:
    return _text(rng, _ASKS, _FACTS + _ASKS, low, high)


def assistant_text(rng: random.Random, low: int = 100, high: int = 300) -> str:
    return _text(rng, _ANSWERS, _FOLLOW_UPS + _ANSWERS, low, high)
