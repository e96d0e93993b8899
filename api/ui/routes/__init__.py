"""The web application's routers, one per audience; ``api.ui.web.install`` includes each.

Order matters only where paths overlap: a fixed path before a parameterised one."""

from __future__ import annotations

from fastapi import APIRouter

from api.ui.routes import (
    admin,
    governance,
    home,
    ig,
    practitioner,
    practitioner_record,
    practitioner_sharing,
    reports,
    safeguarding,
    sign_in,
    subject_access,
)

ROUTERS: list[APIRouter] = [sign_in.router, home.router, safeguarding.router, reports.router,
                            # /ui/clients/new before /ui/clients/{client_id}
                            practitioner_record.router, practitioner_sharing.router,
                            practitioner.router, ig.router, admin.router,
                            subject_access.router, governance.router]
