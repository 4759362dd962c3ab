"""Retry countdown configs: validation with clear messages, and the delay before each retry."""
from __future__ import annotations

import random

import pytest

from portal.errors import ValidationFailed
from portal.webhooks import retry


def test_no_config_gives_the_default_exponential_schedule_with_eight_attempts():
    assert retry.validate_retry_config(None) == retry.DEFAULT_CONFIG
    assert retry.validate_retry_config({})["max_attempts"] == 8


@pytest.mark.parametrize("raw, normalised", [
    ({"type": "fixed", "interval": "90"}, {"type": "fixed", "interval": 90, "max_attempts": 8}),
    ('{"type": "linear", "interval": 10, "increment": 5, "max_attempts": 3}',
     {"type": "linear", "interval": 10, "increment": 5, "max_attempts": 3}),
    ({"type": "exponential", "base": 2, "factor": 1.5, "max_interval": 60},
     {"type": "exponential", "base": 2, "factor": 1.5, "max_interval": 60, "max_attempts": 8}),
    ({"type": "random", "min": 5, "max": 10, "max_attempts": 25},
     {"type": "random", "min": 5, "max": 10, "max_attempts": 25}),
])
def test_each_type_is_normalised(raw, normalised):
    assert retry.validate_retry_config(raw) == normalised


@pytest.mark.parametrize("raw, field, message", [
    ({"type": "hourly"}, "type", "must be one of fixed, linear, exponential, random"),
    ({"type": "fixed", "interval": 0}, "interval", "interval (seconds) must be from 1 to 86400"),
    ({"type": "fixed", "interval": "soon"}, "interval", "must be a number"),
    ({"type": "fixed", "interval": True}, "interval", "must be a number"),
    ({"type": "fixed", "interval": 5, "base": 3}, "base", "'base' is not a parameter of fixed retries"),
    ({"type": "exponential", "base": 60, "max_interval": 30}, "max_interval", "cannot be shorter than base"),
    ({"type": "random", "min": 50, "max": 10}, "max", "max cannot be below min"),
    ({"type": "fixed", "interval": 5, "max_attempts": 26}, "max_attempts", "from 1 to 25"),
    ({"type": "fixed", "interval": 5, "max_attempts": 2.5}, "max_attempts", "whole number"),
    ("[1, 2]", "retry_countdown_config", "must be an object"),
    ("{not json", "retry_countdown_config", "must be a JSON object"),
])
def test_bad_configs_are_refused_naming_the_field(raw, field, message):
    with pytest.raises(ValidationFailed) as refused:
        retry.validate_retry_config(raw)

    assert refused.value.field == field
    assert message in refused.value.message


def test_delays_follow_each_type():
    fixed = retry.validate_retry_config({"type": "fixed", "interval": 30})
    linear = retry.validate_retry_config({"type": "linear", "interval": 10, "increment": 20})
    exponential = retry.validate_retry_config({"type": "exponential", "base": 5, "factor": 3, "max_interval": 100})

    assert [retry.next_delay(fixed, n) for n in (1, 2, 3)] == [30, 30, 30]
    assert [retry.next_delay(linear, n) for n in (1, 2, 3)] == [10, 30, 50]
    assert [retry.next_delay(exponential, n) for n in (1, 2, 3, 4, 200)] == [5, 15, 45, 100, 100]


def test_random_delays_stay_within_their_bounds():
    config = retry.validate_retry_config({"type": "random", "min": 5, "max": 9})
    rng = random.Random(4)

    delays = [retry.next_delay(config, n, rng) for n in range(1, 200)]

    assert all(5 <= d <= 9 for d in delays)
    assert max(delays) - min(delays) > 3  # actually random, not a constant


def test_the_schedule_is_described_in_words():
    assert retry.describe({"type": "fixed", "interval": 60, "max_attempts": 4}) == "every 60 s; 4 attempt(s) in all"
