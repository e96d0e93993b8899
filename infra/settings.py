"""Settings, read once from the environment, each with a documented default.

| variable | default | meaning |
|---|---|---|
| ``ACCORD_DATABASE_URL`` | ``sqlite:///./accord.db`` | event store and read models |
| ``ACCORD_DATABASE_SCHEMA`` | (PostgreSQL ``public``) | PostgreSQL schema for all tables |
| ``ACCORD_KEY_FILE`` | ``./.accord/kek.key`` | key-encryption key for client data keys |
| ``ACCORD_SIGNING_KEY_FILE`` | ``signing.key`` beside the KEK | Ed25519 key signing tree heads |
| ``ACCORD_KAFKA_BOOTSTRAP`` | unset (no Kafka) | Kafka bootstrap servers |
| ``ACCORD_HOST`` / ``ACCORD_PORT`` | ``127.0.0.1`` / ``8000`` | where ``accord serve`` listens |
| ``ACCORD_MAX_BODY_BYTES`` | ``65536`` | larger request bodies get 413 |
| ``ACCORD_PROJECTIONS`` | ``in-process`` | ``worker`` when ``accord worker`` runs them |
| ``ACCORD_ALERT_ACK_HOURS`` | ``4`` | an alert not acknowledged within this is escalated |
| ``ACCORD_TOXIC_TRIO_DAYS`` | ``90`` | the toxic-trio rule's window (domain.rules) |
| ``ACCORD_ETHNICITY_POPULATION`` | unset | ``A=71.2,C=6.4,...``: population shares (%) |

``ACCORD_ETHNICITY_POPULATION`` gives each ethnic category's share of the population the
partnership serves, published beside ``penetration_by_ethnicity``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./accord.db"
    database_schema: str | None = None
    key_file: Path = field(default_factory=lambda: Path(".accord/kek.key"))
    kafka_bootstrap: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 65536
    run_projections: bool = True
    signing_key_file: Path | None = None
    alert_ack_hours: float = 4.0
    toxic_trio_days: int = 90
    #: (ethnic category code, per cent of the population), for penetration by ethnicity.
    ethnicity_population: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        defaults = cls()
        return cls(
            database_url=env.get("ACCORD_DATABASE_URL") or defaults.database_url,
            database_schema=env.get("ACCORD_DATABASE_SCHEMA") or None,
            key_file=Path(env.get("ACCORD_KEY_FILE") or defaults.key_file),
            kafka_bootstrap=env.get("ACCORD_KAFKA_BOOTSTRAP") or None,
            host=env.get("ACCORD_HOST") or defaults.host,
            port=_int(env, "ACCORD_PORT", defaults.port),
            max_body_bytes=_int(env, "ACCORD_MAX_BODY_BYTES", defaults.max_body_bytes),
            run_projections=(env.get("ACCORD_PROJECTIONS") or "in-process") != "worker",
            signing_key_file=Path(env["ACCORD_SIGNING_KEY_FILE"])
            if env.get("ACCORD_SIGNING_KEY_FILE") else None,
            alert_ack_hours=_hours(env, "ACCORD_ALERT_ACK_HOURS", defaults.alert_ack_hours),
            toxic_trio_days=_int(env, "ACCORD_TOXIC_TRIO_DAYS", defaults.toxic_trio_days),
            ethnicity_population=_shares(env, "ACCORD_ETHNICITY_POPULATION"),
        )

    @property
    def signing_key_path(self) -> Path:
        """The tree-head signing key: ``ACCORD_SIGNING_KEY_FILE``, else beside the KEK."""
        return self.signing_key_file or self.key_file.parent / "signing.key"


class SettingsError(ValueError):
    """A setting has a value accord cannot use; the message names it."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive")
    return value


def _hours(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of hours, not {raw!r}") from None
    if not 0 < value < 24 * 365:
        raise SettingsError(f"{name} must be more than 0 and less than a year")
    return value


#: The NHS Data Dictionary's ethnic category codes (domain.catalogue.EthnicCategory).
_ETHNIC_CODES = frozenset("ABCDEFGHJKLMNPRSZ")


def _shares(env: dict[str, str], name: str) -> tuple[tuple[str, float], ...]:
    """``CODE=PERCENT`` pairs, comma-separated: each an ethnic category code and its share
    of the population (0 to 100, together at most 100)."""
    raw = env.get(name)
    if not raw:
        return ()
    shares: dict[str, float] = {}
    for pair in raw.split(","):
        code, _, value = pair.strip().partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if code not in _ETHNIC_CODES or code in shares or not 0 <= share <= 100:
            raise SettingsError(f"{name} must be CODE=PERCENT pairs (ethnic category codes "
                                f"A-S or Z, each once, 0 to 100), not {pair.strip()!r}")
        shares[code] = share
    if sum(shares.values()) > 100.05:
        raise SettingsError(f"{name} adds up to more than 100 per cent")
    return tuple(sorted(shares.items()))
