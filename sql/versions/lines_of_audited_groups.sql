-- keep, of a nightly run's in-scope lines (temp table in_scope_line: every line of the claims
-- in scope), the lines of the claims it audits (temp table claim_to_audit) and every line in
-- a group with one of theirs: the same peer's day ($peer_day), group session
-- ($group_session: see claims_tied_by_day.sql), member's day ($member_day) or member's month
-- ($member_month), the pack's ties. Those complete every group an audited line is in; a
-- context claim's lines on other days are in none, and at state scale they were most of the
-- lines a night built facts for (a claim bills several days).
-- each line is tested against the groups' keys: a union of whole lines would hash every
-- column of millions of them, which ran DuckDB out of memory at 30 million claim lines.

create or replace temp table in_scope_line as
with audited_group as materialized (
    select distinct
        peer_npi, member_id, service_date, place_of_service_code, session_id,
        $group_modifier in (
            hcpcs_modifier_1, hcpcs_modifier_2, hcpcs_modifier_3, hcpcs_modifier_4
        ) as in_group_session
    from in_scope_line
    semi join claim_to_audit using (payer, claim_id)
),
-- a blank place or session ID is a value: the lines of these sessions, found by row
session_line as (
    select line.rowid as line_row
    from in_scope_line as line
    semi join audited_group as audited
        on audited.in_group_session
        and audited.peer_npi = line.peer_npi
        and audited.service_date = line.service_date
        and audited.place_of_service_code is not distinct from line.place_of_service_code
        and audited.session_id is not distinct from line.session_id
    where $group_modifier in (
        line.hcpcs_modifier_1, line.hcpcs_modifier_2, line.hcpcs_modifier_3,
        line.hcpcs_modifier_4
    )
)
select line.*
from in_scope_line as line
where (line.payer, line.claim_id) in (select payer, claim_id from claim_to_audit)
    or $peer_day and (line.peer_npi, line.service_date) in (
        select peer_npi, service_date from audited_group
    )
    or $group_session and line.rowid in (select line_row from session_line)
    or $member_day and (line.member_id, line.service_date) in (
        select member_id, service_date from audited_group
    )
    or $member_month and (line.member_id, date_trunc('month', line.service_date)) in (
        select member_id, date_trunc('month', service_date) from audited_group
    );
