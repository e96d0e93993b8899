"""Read-model and key tables (SQLAlchemy Core), created beside the event store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.sql import Select

metadata = MetaData()

#: One wrapped data key per client. Erasure destroys the key (crypto-shredding).
client_keys = Table(
    "accord_client_keys",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("shredded_at", DateTime(timezone=True), nullable=True),
)

# -- the agency views (projections.views) ----------------------------------------------

#: Every fact in the log, unmasked: the projector's own working copy, never served as is.
#: A fact its controller amended holds the amended payload and time, and ``amended`` the
#: log position of its latest amendment; a retracted one keeps its row (it is still the
#: controller's record of the client), with ``retracted`` the retraction's position, and
#: no view row.
facts = Table(
    "accord_facts",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("client_id", String(32), nullable=False, index=True),
    Column("fact_type", String(64), nullable=False),
    Column("category", String(32), nullable=False),
    Column("controller", String(64), nullable=False, index=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("amended", BigInteger, nullable=True),
    Column("retracted", BigInteger, nullable=True),
)

#: What each agency may see: one row per (fact, purpose, ground), with the window in which
#: the ground holds. What the fact is (type, category, times, data) is read from ``facts``
#: and why it is shown (basis, reason, and the fields shared, to which the data is masked
#: as it is read) from ``view_grounds``: the rows stay small because there are several
#: for every event. Queries start from the caller's own rows.
view_rows = Table(
    "accord_view_rows",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("agency", String(64), primary_key=True),
    Column("purpose", String(32), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("ground", String(24), primary_key=True),
    Column("basis_kind", String(32), nullable=False),
    Column("controller", String(64), nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("not_after", DateTime(timezone=True), nullable=True),
    # Clustered by client on SQLite: a view is one range of the primary key.
    sqlite_with_rowid=False,
)

#: The policy compiled (``consent.policy.Share``): each grant with the facts it covers.
#: The projector keeps these in step with agreements, consents and emergency grants, and
#: the database applies them to facts to write ``view_rows``: every fact of ``category``
#: recorded by ``controller`` (any agency but ``agency`` itself where null) about
#: ``client_id`` (any client where null) that occurred in [data_from, data_until).
view_shares = Table(
    "accord_view_shares",
    metadata,
    Column("ground", String(24), primary_key=True),
    Column("category", String(32), primary_key=True),
    Column("purpose", String(32), primary_key=True),
    Column("agency", String(64), nullable=False),
    Column("basis_kind", String(32), nullable=False),
    Column("controller", String(64), nullable=True),
    Column("client_id", String(32), nullable=True),
    Column("data_from", DateTime(timezone=True), nullable=True),
    Column("data_until", DateTime(timezone=True), nullable=True),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("not_after", DateTime(timezone=True), nullable=True),
    # Only the shares that hold for every client: a controller has thousands of clients'
    # consent shares, and a search for its standing ones must not step through them.
    Index("ix_accord_view_shares_standing", "controller", "category",
          sqlite_where=text("client_id IS NULL"), postgresql_where=text("client_id IS NULL")),
    Index("ix_accord_view_shares_client", "client_id", "category"),
)

#: Why a view row is shown: its basis, the reason in words and the fields shared, under a
#: key derived from their content (so a rebuild writes the same keys). Thousands of rows
#: share each ground.
view_grounds = Table(
    "accord_view_grounds",
    metadata,
    Column("ground", String(24), primary_key=True),
    Column("basis_key", String(120), nullable=False),
    Column("basis", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("fields", Text, nullable=True),
)


def view_items() -> Select[Any]:
    """The view rows with what each fact is and why it is shown: what a view serves.

    ``data`` is the fact's whole payload: callers show only the ground's ``fields`` of it
    (``consent.policy.mask``), and add the ``where`` that keeps them to one agency's rows."""
    return select(
        view_rows.c.client_id, view_rows.c.agency, view_rows.c.purpose, view_rows.c.position,
        view_rows.c.ground, view_rows.c.basis_kind, view_rows.c.controller, facts.c.data,
        view_rows.c.not_before, view_rows.c.not_after,
        facts.c.fact_type, facts.c.category, facts.c.occurred_at, facts.c.recorded_at,
        view_grounds.c.basis_key, view_grounds.c.basis, view_grounds.c.reason,
        view_grounds.c.fields, facts.c.amended,
    ).select_from(
        view_rows.join(facts, facts.c.position == view_rows.c.position)
        .join(view_grounds, view_grounds.c.ground == view_rows.c.ground)
    )

#: Facts entering and leaving each partner's view (not the controller's own), written by
#: the views projector in the same transaction as the rows; ``cause`` is the log position
#: that made the change. The Kafka relay publishes them to ``accord.feed.<agency>`` and
#: deletes what the broker acknowledged (``infra.relay``).
feed_outbox = Table(
    "accord_feed_outbox",
    metadata,
    Column("cause", BigInteger, primary_key=True, autoincrement=False),
    Column("agency", String(64), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("client_id", String(32), nullable=False),
    Column("change", String(8), nullable=False),  # entered | left
    sqlite_with_rowid=False,
)

#: The policy state the views were built with, so a restarted projector resumes exactly.
policy_agencies = Table(
    "accord_policy_agencies",
    metadata,
    Column("slug", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
)
policy_agreements = Table(
    "accord_policy_agreements",
    metadata,
    Column("agreement_id", String(32), primary_key=True),
    Column("state", Text, nullable=False),
)
policy_consents = Table(
    "accord_policy_consents",
    metadata,
    Column("consent_id", String(32), primary_key=True),
    Column("client_id", String(32), nullable=False, index=True),
    Column("scope", Text, nullable=False),
)
policy_erasures = Table(
    "accord_policy_erasures",
    metadata,
    Column("client_id", String(32), primary_key=True),
)
#: Clients whose processing is restricted (UK GDPR Art. 18): no partner share covers
#: their facts until the restriction is lifted (the row is then deleted).
policy_restrictions = Table(
    "accord_policy_restrictions",
    metadata,
    Column("client_id", String(32), primary_key=True),
)
policy_emergencies = Table(
    "accord_policy_emergencies",
    metadata,
    Column("grant_id", String(32), primary_key=True),
    Column("client_id", String(32), nullable=False, index=True),
    Column("scope", Text, nullable=False),
)

#: IG review items for emergency grants (projections.reviews, kept by the views projector):
#: one row per review, and one audience row per agency told of it.
reviews = Table(
    "accord_reviews",
    metadata,
    Column("review_id", String(32), primary_key=True),
    Column("controller", String(64), nullable=False),
    Column("client_id", String(32), nullable=False),
    Column("grant_id", String(32), nullable=False),
    Column("granted_to", String(64), nullable=False),
    Column("principal", String(64), nullable=False),
    Column("principal_name", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("justification", Text, nullable=False),
    Column("clinical_notes", Boolean, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("opened_position", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(32), nullable=True),
    Column("note", Text, nullable=True),
    Column("closed_by", String(64), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    # When the grant was ended before it expired, by whom and why (EmergencyEndCause).
    Column("grant_ended_at", DateTime(timezone=True), nullable=True),
    Column("grant_ended_by", String(64), nullable=True),
    Column("grant_end_cause", String(32), nullable=True),
)
review_audience = Table(
    "accord_review_audience",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("review_id", String(32), primary_key=True),
)

#: Keyed fingerprints for matching (NHS number; family name and date of birth).
client_matching = Table(
    "accord_client_matching",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("client_id", String(32), primary_key=True),
)

#: The keyed fingerprint of each client's date of birth alone, for a name search: it finds
#: the few clients born that day, whose sealed names are then opened and compared
#: (``projections.search``). Its own tracked read model; an erased client's row goes.
client_births = Table(
    "accord_client_births",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("client_id", String(32), primary_key=True),
    Index("accord_client_births_client", "client_id"),
)

#: How far each projection has processed the log (eventsourcing's tracking contract:
#: written in the same transaction as the projection's rows).
tracking = Table(
    "accord_tracking",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# -- the access-audit index (projections.audit) -----------------------------------------

#: One row per read of client data (an AccessRecord in the log).
access_log = Table(
    "accord_access_log",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("access_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("principal", String(64), nullable=False),
    Column("principal_name", String(200), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("purpose", String(64), nullable=True),
    Column("client_id", String(32), nullable=True),
    Column("subject_agency", String(64), nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=True),
    Column("returned", Text, nullable=False),  # JSON: position, category, controller, basis
    Index("accord_access_log_agency_at", "agency", "at"),
    Index("accord_access_log_client", "client_id", "at"),
)

#: Which agencies' data each read returned, about which client: one row per (read,
#: controller, client) (``client_id`` is '' for an item about no one client). A read of
#: another agency's data is a disclosure; a controller's IG lead finds reads of its data.
access_controllers = Table(
    "accord_access_controllers",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("controller", String(64), primary_key=True),
    Column("client_id", String(32), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("accord_access_controllers_controller_at", "controller", "at"),
    Index("accord_access_controllers_client", "client_id", "controller"),
)

#: Every client each access concerned (an alert read names several), so the audit
#: filtered by client and the routing of attempts to a client's controllers find it.
access_clients = Table(
    "accord_access_clients",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Index("accord_access_clients_position", "position"),
)

#: The clients an access found but did not tell the caller of (a match or name search on
#: a person the caller may not identify): routed as attempts to those clients'
#: controllers only, never shown to the caller's own agency.
access_withheld = Table(
    "accord_access_withheld",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Index("accord_access_withheld_position", "position"),
)

# -- the log's Merkle tree (projections.log_tree) ---------------------------------------

#: One leaf per stored event, in log order: the RFC 6962 leaf hash of its canonical bytes.
tree_leaves = Table(
    "accord_tree_leaves",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("leaf_hash", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

#: Interior nodes of perfect subtrees at every fourth level (16, 256, 4096... leaves), so a
#: proof reads a few rows per level instead of rehashing the log.
tree_nodes = Table(
    "accord_tree_nodes",
    metadata,
    Column("level", BigInteger, primary_key=True, autoincrement=False),
    Column("node_index", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

#: Signed tree heads (Ed25519 over ``TreeHead.message``), one per committed batch or so.
tree_heads = Table(
    "accord_tree_heads",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("last_position", BigInteger, nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

# -- safeguarding rules and the alert inbox (projections.safeguarding, .alerts) ----------

#: The rule-relevant facts of every client (domain.rules.RELEVANT_TYPES), as the rules
#: projection saw them: its own copy, tracked with its position.
rule_facts = Table(
    "accord_rule_facts",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("client_id", String(32), nullable=False, index=True),
    Column("fact_type", String(64), nullable=False),
    Column("controller", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
)

#: Household membership as the rules projection saw it: a client is in at most one.
rule_households = Table(
    "accord_rule_households",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("household_id", String(32), nullable=False, index=True),
)

#: The rules projection's policy state: agency kinds and agreement drafts, as JSON.
rule_state = Table(
    "accord_rule_state",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("value", Text, nullable=False),
)

#: The alert inbox: one row per alert, its current status, for the recipient agency.
alerts = Table(
    "accord_alerts",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("recipient", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("client_id", String(32), nullable=False),
    Column("household_id", String(32), nullable=True),
    Column("reason", Text, nullable=False),
    Column("basis", Text, nullable=False),
    Column("trigger_position", BigInteger, nullable=False),
    Column("raised_position", BigInteger, nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("acknowledge_by", DateTime(timezone=True), nullable=False),
    #: When the triggering fact occurred (or the household was linked); None if the
    #: trigger is not an event the rules read (an alert saved by hand, in tests).
    Column("triggered_at", DateTime(timezone=True), nullable=True),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("escalated_at", DateTime(timezone=True), nullable=True),
    Column("assigned_to", String(64), nullable=True),
    Column("assigned_by", String(64), nullable=True),
    Column("assigned_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(64), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("note", Text, nullable=True),
    Column("updated_position", BigInteger, nullable=False),
    Index("accord_alerts_recipient", "recipient", "raised_position"),
    Index("accord_alerts_recipient_changed", "recipient", "updated_position"),
    Index("accord_alerts_due", "status", "acknowledge_by"),
)

# -- flagged clients and the interest they draw (projections.flags) ----------------------

#: Each flag an agency set on a client, as the flags projection saw it (no reason: that
#: stays on the client's stream); ``removed_position`` once it was taken off.
client_flags = Table(
    "accord_client_flags",
    metadata,
    Column("flag_id", String(32), primary_key=True),
    Column("client_id", String(32), nullable=False, index=True),
    Column("agency", String(64), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("removed_position", BigInteger, nullable=True),
)

#: One row per notification of interest raised: the flagging agency told that another
#: agency read, matched or recorded something about the client on that (UTC) day. At
#: most one a day per (recipient, client, interested agency).
interest_notices = Table(
    "accord_interest_notices",
    metadata,
    Column("recipient", String(64), primary_key=True),
    Column("client_id", String(32), primary_key=True),
    Column("agency", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# -- outcome reports for commissioners (projections.reports.projection) ------------------

#: What each commissioner agency may see for the purpose ``commissioning``, of the fact
#: types the measures read: one row per (fact, grant), masked to the grant's fields, with
#: the window in which the grant holds. ``client`` is a keyed pseudonym, never the client
#: id; no identity is ever stored (an age band, derived at an episode's start, is a row of
#: its own, ``fact_type`` ``age_band``, under the demographics share).
report_facts = Table(
    "accord_report_facts",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("fact_type", String(64), primary_key=True),
    Column("basis", String(120), primary_key=True),  # consent.policy.basis_key
    Column("client", String(32), nullable=False),
    Column("category", String(32), nullable=False),
    Column("controller", String(64), nullable=False),
    Column("basis_kind", String(32), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("not_after", DateTime(timezone=True), nullable=True),
    Index("accord_report_facts_client", "agency", "client"),
)

#: Safeguarding alerts, as the reports count them, for each commissioner agency that may
#: see the safeguarding category they rest on: the rule, the recipient's kind, when raised,
#: due and acknowledged, under the client's pseudonym (``alert`` is a pseudonym too).
report_alerts = Table(
    "accord_report_alerts",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("alert", String(32), primary_key=True),
    Column("client", String(32), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("recipient_kind", String(32), nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("acknowledge_by", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("not_after", DateTime(timezone=True), nullable=True),
)

#: The clients' active consents to a commissioner agency for ``commissioning`` (NDTMS's
#: consent flag), by pseudonym: one row per consent (``consent``: a pseudonym of its id).
report_consents = Table(
    "accord_report_consents",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("client", String(32), primary_key=True),
    Column("consent", String(32), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

#: The log position of the last batch that changed any report row (``changed``): reports
#: computed from the rows stay valid until it moves.
report_meta = Table(
    "accord_report_meta",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# -- the web application's signed-in sessions (api.ui.sessions) ----------------------------

#: One row per signed-in browser. The cookie carries a random id; only its SHA-256 is
#: stored, so a copy of this table lets nobody sign in. The principal is checked again on
#: every request (a revoked token ends its sessions at once); ``last_seen`` ends a session
#: left idle.
ui_sessions = Table(
    "accord_ui_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("principal_id", String(32), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    #: The one-time key of the last form of this session that may act only once (adding
    #: a principal shows a token once: sending that form again must not add another).
    Column("used_once", String(64), nullable=True),
)
