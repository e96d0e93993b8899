"""Paths of the web application that more than one module needs."""

from __future__ import annotations


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of the web application, nothing else (no
    other host, no scheme-relative URL), so the sign-in page cannot send anyone away."""
    if (not path or not path.startswith("/ui") or path.startswith("//") or "\\" in path
            or any(ord(c) < 32 for c in path) or path.startswith("/ui/sign-")):
        return "/ui"
    return path
