"""Signed-in sessions of the web application, kept on the server.

A principal signs in once with their token; the browser then holds only a random session
id in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS). The token itself is never
kept: the session names the principal, whose standing is checked again on every request
(``AccordApplication.resume``), so a revoked token ends its sessions at the next request.
A session left idle for ``IDLE_MINUTES`` ends, and each session has its own CSRF token,
which every form carries and every state-changing request must return.

Sessions live in the read models' database (``accord_ui_sessions``), so several server
processes share them and a restart signs nobody out. Only the SHA-256 of a session id is
stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from sqlalchemy import Engine, delete, insert, select, update

from infra.dialect import as_utc
from infra.schema import ui_sessions

#: The cookie that carries the session id; scoped to the web application's paths.
COOKIE = "accord_session"
COOKIE_PATH = "/ui"
#: A session with no request for this long ends (the NHS norm for shared workstations).
IDLE_MINUTES = 15
#: ``last_seen`` is written at most this often: a page load is not a database write.
TOUCH_EVERY = timedelta(seconds=30)


class Ended(StrEnum):
    """Why there is no session to resume; the sign-in page says it in words."""

    NONE = "none"
    IDLE = "idle"
    REVOKED = "revoked"
    SIGNED_OUT = "signed_out"

    @property
    def message(self) -> str:
        return {
            Ended.NONE: "Sign in to continue.",
            Ended.IDLE: f"You were signed out after {IDLE_MINUTES} minutes without "
                        "activity. Sign in again to continue.",
            Ended.REVOKED: "Your access has been revoked. Ask your agency's "
                           "administrator if you think this is wrong.",
            Ended.SIGNED_OUT: "You have signed out.",
        }[self]


@dataclass(frozen=True)
class Session:
    """A signed-in browser: whose it is and the CSRF token its forms carry."""

    id_hash: str
    principal_id: UUID
    csrf_token: str

    def csrf_matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(self.csrf_token, offered)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Creates, resumes and ends sessions. ``clock`` is injectable for the idle tests."""

    def __init__(self, engine: Engine, *, idle_minutes: float = IDLE_MINUTES,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.idle = timedelta(minutes=idle_minutes)
        self.clock = clock

    def create(self, principal_id: UUID) -> tuple[str, Session]:
        """A new session for a principal who has just signed in: the cookie's value, and
        the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(_hash(session_id), principal_id, secrets.token_urlsafe(32))
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(insert(ui_sessions).values(
                id_hash=session.id_hash, principal_id=principal_id.hex,
                csrf_token=session.csrf_token, created_at=now, last_seen=now))
        return session_id, session

    def resume(self, session_id: str | None, *, touch: bool = True) -> Session | Ended:
        """The session a cookie names, if it has not ended; idle ones end here. ``touch``
        counts the request as activity (not so for what a page does on its own)."""
        if not session_id or len(session_id) > 100:
            return Ended.NONE
        id_hash = _hash(session_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(ui_sessions).where(
                ui_sessions.c.id_hash == id_hash)).first()
        if row is None:
            return Ended.NONE
        now = self.clock()
        last_seen = as_utc(row.last_seen)
        if now - last_seen > self.idle:
            self.end(session_id)
            return Ended.IDLE
        if touch and now - last_seen > TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(ui_sessions).where(
                    ui_sessions.c.id_hash == id_hash).values(last_seen=now))
        return Session(id_hash, UUID(row.principal_id), row.csrf_token)

    def use_once(self, session: Session, key: str | None) -> bool:
        """Spends a form's one-time key: True the first time this session sends it,
        False when the same form comes again (a reload, a double click)."""
        if not key or len(key) > 64:
            return False
        with self.engine.begin() as conn:
            spent = conn.execute(update(ui_sessions).where(
                ui_sessions.c.id_hash == session.id_hash,
                (ui_sessions.c.used_once.is_(None)) | (ui_sessions.c.used_once != key),
            ).values(used_once=key))
        return bool(spent.rowcount)

    def end(self, session_id: str) -> None:
        """Signs a session out (sign-out, idle, a revoked principal)."""
        with self.engine.begin() as conn:
            conn.execute(delete(ui_sessions).where(
                ui_sessions.c.id_hash == _hash(session_id)))

    def end_all(self, principal_id: UUID) -> int:
        """Ends every session of a principal (their token was revoked)."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(ui_sessions).where(
                ui_sessions.c.principal_id == principal_id.hex))
        return result.rowcount or 0

    def forget_idle(self) -> int:
        """Deletes sessions idle past the limit (they would end when next used anyway)."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(ui_sessions).where(
                ui_sessions.c.last_seen < self.clock() - self.idle))
        return result.rowcount or 0
