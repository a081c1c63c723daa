"""What a campaign is made of, shared by its policy, its store and its dialler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    """How an attempt ended, and (for a contact) how it stands."""

    ANSWERED = "answered"  # a person (or AMD unsure) heard the script
    MACHINE = "machine"  # an answering machine, no message left
    MESSAGE_LEFT = "message_left"  # an answering machine got the script's on_machine message
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # the call could not be placed, or broke off (a crash mid-call included)
    DNC = "dnc"  # on the do-not-call list: never dialled
    CANCELLED = "cancelled"  # the campaign was cancelled before the contact's call was done
    PENDING = "pending"  # (a contact) more attempts may come


# What one call attempt can end as (the others are a contact's standing only).
ATTEMPT_OUTCOMES = frozenset(Outcome) - {Outcome.DNC, Outcome.CANCELLED, Outcome.PENDING}


class CampaignState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"  # every contact has its final outcome


@dataclass(frozen=True)
class Contact:
    """One good line of a contact list."""

    line: int  # its line number in the CSV file (1 is the header)
    number: str  # normalised: an optional "+" then 3-15 digits
    fields: Mapping[str, str] = field(default_factory=dict)  # every column, number included
    timezone: str | None = None  # the contact's own (an IANA name), else the campaign's
