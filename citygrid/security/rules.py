"""What each role may do, decided here and only here; core functions call these with the caller's `Principal`
and routers never decide rights themselves. A refusal is a coded error: 401 (`unauthenticated`) for anonymous
callers who would need credentials, 403 (`forbidden`) for principals whose roles do not cover the act, and 404
for objects and layers of classes the caller may not read (so their existence does not leak).

A *place* is the most specific division code known of a thing (village, else township, else county): a grant
covers it when the code starts with the grant's division prefix (`Grant.covers`).

| act | who | negative test (tests/test_security_roles.py, C: tests/test_security_classification.py) |
|---|---|---|
| read public layers, tiles, reference data, the QR page | everyone (anonymous included) | (tests/test_web.py: the map and QR page work anonymously) |
| read objects of a restricted class (catalog `public: false`, or `personal: true`) one by one, in layers and tiles | admin; a department owning the class, in its scope; cadres and reviewers in their area; for personal classes also the personal grant in its scope; others get 404 | test_unpublished_class_is_404_for_the_public, test_restricted_layer_is_scoped |
| see attributes above the public clearance (`public_clearance`, L1) | a principal in its scope, up to its clearance; L4 person fields (names, ID numbers, phones) also need the personal grant, else masked | C: test_no_l3_or_l4_value_reaches_a_caller_without_clearance, test_masks_and_withholding_below_the_personal_grant |
| filter or aggregate on an attribute | up to the clearance the caller holds everywhere, never L4 in filters | C: the sweep (aggregates of capacity/floor_area), tests/test_ogc_cql.py |
| counts of persons or households below k | admins and the unscoped personal grant (`may_see_small_counts`); others get them hidden, bbox/region answers in whole groups, all-classes counts without personal classes | C: test_overlapping_bboxes_cannot_isolate_a_household, test_household_counts_of_grids_below_k_are_hidden, test_classified_and_household_objects_stay_out_of_public_counts |
| create/update/retire/split/merge/confirm objects of a class | admin; a department owning the class (责任分工目录, or an explicit class list), inside its scope; never cadres or reviewers | test_cadre_may_not_write_the_registry, test_department_may_not_edit_another_departments_class, test_department_outside_its_scope |
| edit objects through OGC API – Features Part 4 (`POST/PUT/PATCH/DELETE /ogc/collections/class-*/items`) | as create/update/retire above (the same registry functions) | tests/test_ogc_edit.py: test_rights_are_those_of_objects |
| the object page `/objects/{code}/page` | as reading the object; attributes by clearance and masks, like `/objects/{code}` | tests/test_object_page.py: test_unpublished_class_is_404_to_the_public_and_shown_to_its_department, test_person_fields_stay_masked_without_the_personal_grant |
| confirm every object of a class in an area at once (`POST /objects/confirm`, 数据鲜活性) | admin; a department owning the class whose scope covers the whole area | tests/test_freshness.py: test_bulk_confirm_is_for_the_owning_department_in_its_scope |
| read the freshness report (`/freshness`, its page and village choropleth) | everyone, over the objects they may read (`readable_sql`, as `/objects`): classes not public stay out for the public | tests/test_freshness.py: test_page_renders_anonymously_with_public_classes_only |
| reserve code blocks for a class | as editing the class (in a county it works in), at most `code_block_max` codes a call and `code_block_daily` in 24 h (admins exempt) | test_code_blocks_need_rights_and_respect_quotas, test_daily_code_quota_answers_429_with_retry_after |
| register persons (三实); see a room's persons and house | the personal grant with L4 clearance, in its scope (row-level security agrees) | test_registering_persons_needs_the_personal_grant, C: test_masks_and_withholding_below_the_personal_grant |
| register organizations (三实) | admin; any role covering the door plate's place | test_registering_organizations_needs_a_role_there |
| resolve addresses in bulk (POST /address/geocode, batch files) | departments and admins | test_bulk_geocoding_is_for_departments |
| see a job and its result | its owner; admins all | test_jobs_are_seen_by_their_owner |
| grid-system imports (principals, grants and the catalog are CLI work) | admin | test_grid_import_is_for_admins |
| print a batch of door plates (`/doorplates.pdf`, 智慧门牌) of a village or compound | admin; any role whose scope covers the place (the plates' content is public, a batch is the village's work); anonymous 401 | tests/test_doorplates.py: test_printing_plates_needs_a_role_there |
| submit surveyed objects (files, ODK); see a submission | a cadre in its village, its own submissions; a reviewer those of its township; admins all; others 404 | tests/test_survey.py: test_cadre_may_submit_only_for_its_village, test_submissions_are_seen_by_their_cadre_and_reviewer |
| hand a submission in for review (`submitted`) | its cadre (the submitter, in its village); admins | tests/test_survey_states.py: test_every_state_transition_and_the_forbidden_ones |
| review submissions: approve (registers the object with a code) or reject rows | a reviewer in its township (the registration needs no department right: the approval is the right); admins | tests/test_survey.py: test_only_the_townships_reviewer_reviews |
| attach a record to an object's code (一码互联, `POST /links/{code}`) | admin; a department whose scope covers the object's place (any class: departments link their own records to any object they work on) | tests/test_sharing_links.py: test_linking_needs_a_department_there |
| remove a link | admin; its author; a department grant of the link's department covering the place | tests/test_sharing_links.py: test_unlinking_is_for_its_department |
| read links and feed entries | as the object they concern (`may_read_object`), and a link only up to the caller's clearance at the object's place (`classification.may_read_level`) | tests/test_sharing_links.py: test_links_are_cut_to_the_callers_clearance, tests/test_sharing_changes.py: test_feed_is_filtered_by_rights |
| make webhooks (citygrid follows the feed for the caller); see, stop them and their dead letters | any principal that is logged in, for itself (deliveries carry only what it may read); admins all | tests/test_sharing_webhooks.py: test_batches_are_signed_retried_and_dead_lettered, test_a_webhook_sees_only_what_its_principal_may |
| any write or bulk work, anonymously | nobody: 401 before the body is read | test_every_write_route_refuses_anonymous_callers |
"""

from __future__ import annotations

from typing import Any

from citygrid.catalog import ObjectClass, get_catalog
from citygrid.errors import E
from citygrid.security.principal import LEVELS, Grant, Level, Principal
from citygrid.settings import get_settings

# Division prefixes a right holds in: None everywhere, () nowhere.
Scope = tuple[str, ...] | None


def place_of(village: str | None, township: str | None, county: str | None) -> str | None:
    """The most specific division code known of a thing, which grants are checked against."""
    return village or township or county


def in_scope(scope: Scope, place: str | None) -> bool:
    if scope is None:
        return True
    return place is not None and any(place.startswith(s) for s in scope)


def _scope(grants: list[Grant]) -> Scope:
    if any(g.division is None for g in grants):
        return None
    return tuple(sorted({g.division for g in grants if g.division is not None}))


def _union(a: Scope, b: Scope) -> Scope:
    return None if a is None or b is None else tuple(sorted(set(a) | set(b)))


# --- refusals ------------------------------------------------------------------------------------------------


def require_login(p: Principal, action_zh: str, action_en: str) -> None:
    if p.anonymous:
        raise E.unauthenticated(None, action_zh=action_zh, action_en=action_en)


def _refuse(p: Principal, action_zh: str, action_en: str, why_zh: str, why_en: str) -> None:
    require_login(p, action_zh, action_en)
    raise E.forbidden(None, why_zh=f"{action_zh}：{why_zh}", why_en=f"{action_en}: {why_en}")


# --- objects by class ------------------------------------------------------------------------------------------


def owns_class(g: Grant, cls: ObjectClass) -> bool:
    """A department grant for the class: its department owns it (责任分工目录) or it lists the class."""
    return g.role == "department" and (g.department == cls.department.id
                                       or (g.classes is not None and cls.code in g.classes))


def may_edit_class(p: Principal, cls: ObjectClass, place: str | None = None) -> bool:
    """Admins anywhere; a department for the classes it owns, inside its scope. `place` None asks whether the
    principal may edit the class anywhere at all (the early check, before the place is known)."""
    if p.is_admin:
        return True
    return any(owns_class(g, cls) and (place is None or g.covers(place)) for g in p.grants)


def require_edit_class(p: Principal, cls: ObjectClass, place: str | None = None, action_zh: str = "修改对象",
                       action_en: str = "editing objects") -> None:
    if may_edit_class(p, cls, place):
        return
    if not any(owns_class(g, cls) for g in p.grants):
        why_zh = f"{cls.name}（{cls.code}）归 {cls.department.name} 管理" if p.grants else "您没有任何角色"
        why_en = f"class {cls.code} belongs to department {cls.department.id}"
    else:
        why_zh, why_en = f"{place} 不在您的管辖范围内", f"{place} is outside your jurisdiction"
    _refuse(p, action_zh, action_en, why_zh, why_en)


def may_allocate(p: Principal, cls: ObjectClass, county: str) -> bool:
    """Codes carry their county: a department takes codes of its classes in a county it works in (its scope
    is that county, or a township or village of it)."""
    return p.is_admin or any(owns_class(g, cls) and (g.division is None or g.division.startswith(county)
                                                     or county.startswith(g.division)) for g in p.grants)


def require_allocate(p: Principal, cls: ObjectClass, county: str) -> None:
    if not may_allocate(p, cls, county):
        _refuse(p, "分配或预留代码", "allocating codes", f"{cls.name}（{cls.code}）在 {county} 的代码不归您分配",
                f"codes of class {cls.code} in {county} are not yours to allocate")


def restricted(cls: ObjectClass) -> bool:
    """Objects of the class are not for everyone one by one: classified (`public: false`) or about people
    (`personal: true`; the public sees those only as counts of at least k)."""
    return not cls.public or cls.personal


def read_scopes(p: Principal, cls: ObjectClass) -> Scope:
    """Where the principal may read the class's objects one by one (features, tiles, the registry)."""
    if not restricted(cls) or p.is_admin:
        return None
    holders = [g for g in p.grants if owns_class(g, cls) or g.role in ("cadre", "reviewer")]
    scope = _scope(holders) if holders else ()
    if cls.personal and personal_scopes(p) != ():
        scope = _union(scope, personal_scopes(p))
    return scope


def may_read_object(p: Principal, cls: ObjectClass, place: str | None) -> bool:
    return in_scope(read_scopes(p, cls), place)


PLACE_SQL = "coalesce(o.village_code, o.township_code, o.division_code)"


def readable_sql(p: Principal, place_sql: str = PLACE_SQL, class_sql: str = "o.class_code") -> tuple[str, dict[str, Any]]:
    """`may_read_object` as SQL over objects of any class, with its bind parameters: restricted classes the
    caller may not read are left out, those it may read in some places only there."""
    by_scope: dict[tuple[str, ...], list[str]] = {}
    restricted_codes = []
    for cls in get_catalog().classes.values():
        scope = read_scopes(p, cls) if restricted(cls) else None
        if scope is None:
            continue
        restricted_codes.append(cls.code)
        if scope:
            by_scope.setdefault(scope, []).append(cls.code)
    if not restricted_codes:
        return "TRUE", {}
    params: dict[str, Any] = {"rv_r": restricted_codes}
    ors = [f"{class_sql} <> ALL(CAST(:rv_r AS text[]))"]
    for i, (scope, codes) in enumerate(sorted(by_scope.items())):
        ors.append(f"({class_sql} = ANY(CAST(:rv_c{i} AS text[])) AND {place_sql} LIKE ANY(CAST(:rv_s{i} AS text[])))")
        params |= {f"rv_c{i}": codes, f"rv_s{i}": [s + "%" for s in scope]}
    return "(" + " OR ".join(ors) + ")", params


def aggregate_scopes(p: Principal, cls: ObjectClass) -> Scope:
    """Where the principal may count the class's objects: personal classes everywhere (with k, see
    `may_see_small_counts`), classified ones only where they may be read."""
    return None if cls.public else read_scopes(p, cls)


# --- clearance and personal data ----------------------------------------------------------------------------


def public_clearance() -> Level:
    return get_settings().public_clearance


def clearance_scopes(p: Principal) -> Scope:
    """Where the principal's own clearance applies (where it works); elsewhere it sees what the public sees."""
    return None if p.is_admin else _scope(list(p.grants)) if p.grants else ()


def own_clearance(p: Principal) -> Level:
    """The clearance the principal holds where it works (never below the public's)."""
    return "L4" if p.is_admin else max(public_clearance(), p.clearance, key=LEVELS.index)


def clearance_at(p: Principal, place: str | None) -> Level:
    return own_clearance(p) if in_scope(clearance_scopes(p), place) else public_clearance()


def personal_scopes(p: Principal) -> Scope:
    """Where the principal may read personal information: the explicit grant, L4 clearance, its places."""
    if p.is_admin:
        return None
    return clearance_scopes(p) if p.personal and p.clearance == "L4" else ()


def may_read_personal(p: Principal, place: str | None = None) -> bool:
    """Persons' names, ID numbers and phones unmasked; `place` None asks about the principal as a whole."""
    scope = personal_scopes(p)
    return scope != () if place is None else in_scope(scope, place)


def require_personal(p: Principal, place: str | None = None, action_zh: str = "登记或查看个人信息",
                     action_en: str = "registering or reading personal data") -> None:
    if may_read_personal(p, place):
        return
    if may_read_personal(p):
        _refuse(p, action_zh, action_en, f"{place} 不在您的范围内", f"{place} is outside your scope")
    _refuse(p, action_zh, action_en, "需要个人信息授权（personal）和 L4 密级",
            "needs the personal-data grant and L4 clearance")


def may_see_small_counts(p: Principal) -> bool:
    """Counts of persons or households below k, anywhere: admins, and the personal grant without a division
    limit (aggregates cross divisions, so a scoped grant does not lift k)."""
    return personal_scopes(p) is None


# --- the rest -------------------------------------------------------------------------------------------------


def require_admin(p: Principal, action_zh: str, action_en: str) -> None:
    if not p.is_admin:
        _refuse(p, action_zh, action_en, "仅管理员可以操作", "only admins may do this")


def require_register_organization(p: Principal, place: str | None) -> None:
    if p.is_admin or any(g.covers(place) for g in p.grants):
        return
    _refuse(p, "登记实有单位", "registering organizations", f"{place} 不在您的范围内", f"{place} is outside your scope")


def require_print_plates(p: Principal, place: str | None) -> None:
    """Printing a batch of door plates is the village's and township's work (the plates themselves are public)."""
    if p.is_admin or any(g.covers(place) for g in p.grants):
        return
    _refuse(p, "打印门牌", "printing door plates", f"{place} 不在您的范围内", f"{place} is outside your scope")


def require_submit(p: Principal, village: str) -> None:
    if p.is_admin or any(g.covers(village) for g in p.grants_of("cadre")):
        return
    _refuse(p, "提交调查数据", "submitting survey data", f"村/社区 {village} 不在您的范围内",
            f"village {village} is not yours")


def may_review(p: Principal, township: str) -> bool:
    return p.is_admin or any(g.covers(township) for g in p.grants_of("reviewer"))


def require_review(p: Principal, township: str) -> None:
    if may_review(p, township):
        return
    _refuse(p, "审核调查数据", "reviewing survey data", f"乡镇 {township} 不在您的范围内",
            f"township {township} is not yours")


def may_read_submission(p: Principal, submitter: str, village: str, township: str) -> bool:
    return p.is_admin or any(g.covers(village) for g in p.grants_of("cadre")) and submitter == p.name \
        or any(g.covers(township) for g in p.grants_of("reviewer"))


def submissions_sql(p: Principal) -> tuple[str, dict[str, Any]]:
    """`may_read_submission` as SQL over `submission s`, with its bind parameters."""
    if p.is_admin:
        return "TRUE", {}
    ors: list[str] = []
    params: dict[str, Any] = {}
    cadre = [g.division or "" for g in p.grants_of("cadre")]
    review = [g.division or "" for g in p.grants_of("reviewer")]
    if cadre:
        ors.append("(s.submitter = :sq_me AND s.village_code LIKE ANY(CAST(:sq_c AS text[])))")
        params |= {"sq_me": p.name, "sq_c": [d + "%" for d in cadre]}
    if review:
        ors.append("s.township_code LIKE ANY(CAST(:sq_r AS text[]))")
        params["sq_r"] = [d + "%" for d in review]
    return ("(" + " OR ".join(ors) + ")" if ors else "FALSE"), params


def require_bulk_resolve(p: Principal) -> None:
    if p.is_admin or p.grants_of("department"):
        return
    _refuse(p, "批量地址解析", "batch address resolution", "仅部门和管理员可以使用", "departments and admins only")


def job_owner(p: Principal) -> str | None:
    """Whose jobs (and their results) `p` sees: everyone's for admins (None), its own otherwise; the public has
    none (no job is owned by the empty name)."""
    if p.is_admin:
        return None
    return "" if p.anonymous else p.name


def code_block_quota(p: Principal) -> tuple[int, int] | None:
    """Codes per call and per 24 hours the principal may reserve; None for admins (no quota)."""
    if p.is_admin:
        return None
    s = get_settings()
    return s.code_block_max, s.code_block_daily


# --- links by code (一码互联) ------------------------------------------------------------------------------------


def link_department(p: Principal, place: str | None) -> str | None:
    """The department a principal links records for at `place` (its first department grant covering it)."""
    return next((g.department for g in p.grants_of("department") if g.covers(place)), None)


def may_link(p: Principal, place: str | None) -> bool:
    return p.is_admin or any(g.covers(place) for g in p.grants_of("department"))


def require_link(p: Principal, place: str | None) -> None:
    if not may_link(p, place):
        _refuse(p, "关联业务记录", "linking records", f"{place} 不在您部门的范围内" if p.grants else "您没有任何角色",
                f"{place} is outside your department's scope" if p.grants else "you hold no role")


def require_unlink(p: Principal, place: str | None, department: str | None, created_by: str) -> None:
    if p.is_admin or p.name == created_by or any(
            g.department == department and g.covers(place) for g in p.grants_of("department")):
        return
    _refuse(p, "解除关联", "unlinking records", "该关联不属于您的部门", "the link is not your department's")
