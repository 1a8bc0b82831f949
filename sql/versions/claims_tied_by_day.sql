-- widen the temp table scope_claim by every claim with a line on the same peer's day
-- ($peer_day), in the same group session ($group_session: billed with $group_modifier by the
-- same peer on the same day at the same place of service with the same session ID, a blank
-- being a value), on the same member's day ($member_day) or in the same member's month
-- ($member_month) as a line of a scope claim, before or after tonight's deliveries: the ways
-- a pack says its lines' facts depend on other lines (its related_lines: a session size counts
-- its session's members, a duplicate is a member's day, a monthly unit cap a member's month).
-- Widened once from the touched claims, it gives the claims whose facts can have changed;
-- widened again, every claim an audited line shares such a group with, so that those groups
-- are complete.
-- needs touched_line (touched_lines.sql): the in-scope lines of the touched claims;
-- audit.audited_lines holds every other claim's lines: those of the policy $policy_id, whose
-- lines are the only ones its rules tie together.

create or replace temp table tied_by_day as
with audited_line as (
    select * from audit.audited_lines where policy_id = $policy_id
),
scope_line as (
    select
        peer_npi, member_id, service_date, place_of_service_code, session_id,
        hcpcs_modifier_1, hcpcs_modifier_2, hcpcs_modifier_3, hcpcs_modifier_4
    from touched_line
    union all
    select
        line.peer_npi, line.member_id, line.service_date, line.place_of_service_code,
        line.session_id, line.hcpcs_modifier_1, line.hcpcs_modifier_2, line.hcpcs_modifier_3,
        line.hcpcs_modifier_4
    from audited_line as line
    semi join scope_claim using (payer, claim_id)
),
scope_session as (
    select distinct peer_npi, service_date, place_of_service_code, session_id
    from scope_line
    where $group_modifier in (
        hcpcs_modifier_1, hcpcs_modifier_2, hcpcs_modifier_3, hcpcs_modifier_4
    )
)
select payer, claim_id from scope_claim
union
select line.payer, line.claim_id
from audited_line as line
semi join scope_line using (peer_npi, service_date)
where $peer_day
union
select line.payer, line.claim_id
from audited_line as line
semi join scope_session
    on scope_session.peer_npi = line.peer_npi
    and scope_session.service_date = line.service_date
    and scope_session.place_of_service_code is not distinct from line.place_of_service_code
    and scope_session.session_id is not distinct from line.session_id
where $group_session
    and $group_modifier in (
        line.hcpcs_modifier_1, line.hcpcs_modifier_2, line.hcpcs_modifier_3, line.hcpcs_modifier_4
    )
union
select line.payer, line.claim_id
from audited_line as line
semi join scope_line using (member_id, service_date)
where $member_day
union
select line.payer, line.claim_id
from audited_line as line
semi join scope_line
    on scope_line.member_id = line.member_id
    and date_trunc('month', scope_line.service_date) = date_trunc('month', line.service_date)
where $member_month;

create or replace temp table scope_claim as from tied_by_day;
