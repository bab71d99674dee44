"""The database roles the application uses, what each may touch, and the row-level security policies: the
picture of migration 0017 (and of the grants later migrations add), checked against a migrated database by
`tests/test_security_rls.py`, as `models.py` is the picture of the tables.

Migrations run as the owner of the tables. The web application logs in as `citygrid_app`, which owns nothing,
is no superuser and holds no privilege of its own (NOINHERIT): every transaction first takes one of two roles
with `set_config('role', …, true)` (= `SET LOCAL ROLE`), together with the caller's division scope
(`citygrid.divisions`) and personal-data flag (`citygrid.personal`), in one statement
(`citygrid.security.scope.scoped`). A transaction that forgot to do so is refused every table; one that took
the area role but set no scope sees no row. All of it is transaction-local, so the scheme is safe behind a
pooler in transaction mode (pgbouncer).

- `citygrid_all`: scope `*`: admins, the process itself (SYSTEM), principals whose grants cover everywhere, and
  the anonymous public (whose rights the application limits: reads, and the class-level public/non-public
  filter). Its policies on objects, door plates and organizations are `true`, which the planner drops (no cost,
  indexes as without RLS); persons and houses need `citygrid.personal = 'on'`, which the public never has.
- `citygrid_area`: principals whose grants cover a list of division prefixes (departments of a township,
  cadres, reviewers). Reads every object of a public class and every object of any class in its area (so a
  logged-in cadre sees no less of the public map than an anonymous caller); writes only inside its area
  (WITH CHECK); persons and houses only in rooms of its area, with personal on; door plates and organizations
  (public) everywhere, new organizations only at doors of its area.

Why two roles rather than one role and a `'*'` setting: PostgreSQL evaluates a policy before any condition of
the query that is not LEAKPROOF, and PostGIS's `&&` is not, so under a non-trivial policy a bbox query cannot
use its GiST index (measured on 200k points: a 6 ms bitmap index scan became a 67 ms sequential scan). A policy
that is literally `true` disappears at planning, so the public and county-wide callers, who make nearly every
map and tile request, pay nothing; only area-scoped staff pay for the policy they are subject to.
"""

from __future__ import annotations

from citygrid.security.scope import ALL, AREA  # the names the application takes per transaction

APP_LOGIN = "citygrid_app"
ROLES = (ALL, AREA)

# The tables under row-level security.
RLS_TABLES = ("city_object", "addr_node", "house", "person", "organization", "link", "change_log", "submission",
              "submission_row", "submission_attachment", "submission_revision")

_READ_ONLY = ("division", "division_code", "data_source", "department", "object_class", "layer_version", "agg_h3",
              "agg_grid", "house", "addr_node", "audit_head")

# Table privileges of the two roles (the same; their policies differ). Nothing gets TRUNCATE, REFERENCES or
# TRIGGER; `audit_log` is INSERT and SELECT only; the trigger that chains the audit log and those that keep
# `layer_version`, `agg_h3` and `agg_grid` are SECURITY DEFINER, so those tables (and `audit_head`) are read-only.
WORKING: dict[str, frozenset[str]] = {
    **{t: frozenset({"SELECT"}) for t in _READ_ONLY},
    "code_counter": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "issued_code": frozenset({"SELECT", "INSERT"}),
    "city_object": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "city_object_history": frozenset({"SELECT", "INSERT"}),
    "lineage": frozenset({"SELECT", "INSERT"}),
    "change_log": frozenset({"SELECT"}),  # written only by triggers (0018)
    "link": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "webhook": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "webhook_dead": frozenset({"SELECT", "INSERT"}),
    "audit_log": frozenset({"SELECT", "INSERT"}),
    "principal": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "principal_role": frozenset({"SELECT", "INSERT"}),
    "api_key": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "job": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "grid": frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),
    "grid_membership": frozenset({"SELECT", "INSERT", "DELETE"}),
    "person": frozenset({"SELECT", "INSERT"}),
    "organization": frozenset({"SELECT", "INSERT"}),
    # survey intake (0019): submissions are never deleted; processing replaces a submission's rows
    "submission": frozenset({"SELECT", "INSERT", "UPDATE"}),
    "submission_row": frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),
    "submission_attachment": frozenset({"SELECT", "INSERT"}),
    "submission_revision": frozenset({"SELECT", "INSERT"}),  # 0023: what a resubmission replaced, kept
}
GRANTS: dict[str, dict[str, frozenset[str]]] = {
    APP_LOGIN: {},
    ALL: WORKING,
    AREA: WORKING,
}

# Policies by table: name → (command, roles). Their expressions are in 0017_app_role_and_row_security.py.
POLICIES: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "city_object": {"city_object_all": ("ALL", (ALL,)), "city_object_area_read": ("SELECT", (AREA,)),
                    "city_object_area_insert": ("INSERT", (AREA,)), "city_object_area_update": ("UPDATE", (AREA,))},
    "addr_node": {"addr_node_read": ("SELECT", (ALL, AREA))},
    "organization": {"organization_read": ("SELECT", (ALL, AREA)),
                     "organization_all_insert": ("INSERT", (ALL,)),
                     "organization_area_insert": ("INSERT", (AREA,))},
    "person": {"person_all": ("ALL", (ALL,)), "person_area": ("ALL", (AREA,))},
    "house": {"house_all": ("SELECT", (ALL,)), "house_area": ("SELECT", (AREA,))},
    # 0018: links as their objects; the feed's entries as the objects they are about
    "link": {"link_all": ("ALL", (ALL,)), "link_area": ("ALL", (AREA,))},
    "change_log": {"change_log_all": ("SELECT", (ALL,)), "change_log_area_read": ("SELECT", (AREA,))},
    # 0019_survey_intake.py: an area sees the submissions of its villages, rows and attachments follow them
    "submission": {"submission_all": ("ALL", (ALL,)), "submission_area": ("ALL", (AREA,))},
    "submission_row": {"submission_row_all": ("ALL", (ALL,)), "submission_row_area": ("ALL", (AREA,))},
    "submission_attachment": {"submission_attachment_all": ("ALL", (ALL,)),
                              "submission_attachment_area": ("ALL", (AREA,))},
    "submission_revision": {"submission_revision_all": ("ALL", (ALL,)),
                            "submission_revision_area": ("ALL", (AREA,))},
}
