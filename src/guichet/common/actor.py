"""Who did something, and through which channel. Passed to every service function."""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS = ("web", "api", "cli", "counter", "phone", "system", "import")


@dataclass(frozen=True, slots=True)
class Actor:
    """The author of a change. ``ref`` is an opaque identifier, never a name or an e-mail."""

    ref: str
    channel: str = "web"
    user_id: int | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")

    @classmethod
    def for_user(cls, user, channel: str = "web") -> Actor:
        return cls(ref=f"user:{user.pk}", channel=channel, user_id=user.pk)

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(ref=f"system:{what}", channel="system")

    @classmethod
    def cli(cls) -> Actor:
        return cls(ref="cli", channel="cli")

    @classmethod
    def anonymous(cls, channel: str = "web") -> Actor:
        return cls(ref="anonymous", channel=channel)
