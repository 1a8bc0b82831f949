-- keep, of a nightly run's in-scope lines (temp table in_scope_line: every line of the claims
-- in scope), the lines of the claims it audits (temp table claim_to_audit) and every line in
-- a group with one of theirs: the same peer's day ($peer_day), member's day ($member_day) or
-- member's month ($member_month), the pack's ties. Those complete every group an audited
-- line is in; a context claim's lines on other days are in none, and at state scale they
-- were most of the lines a night built facts for (a claim bills several days).
-- each line is tested against the groups' keys: a union of whole lines would hash every
-- column of millions of them, which ran DuckDB out of memory at 30 million claim lines.

create or replace temp table in_scope_line as
with audited_group as materialized (
    select distinct peer_npi, member_id, service_date
    from in_scope_line
    semi join claim_to_audit using (payer, claim_id)
)
select line.*
from in_scope_line as line
where (line.payer, line.claim_id) in (select payer, claim_id from claim_to_audit)
    or $peer_day and (line.peer_npi, line.service_date) in (
        select peer_npi, service_date from audited_group
    )
    or $member_day and (line.member_id, line.service_date) in (
        select member_id, service_date from audited_group
    )
    or $member_month and (line.member_id, date_trunc('month', line.service_date)) in (
        select member_id, date_trunc('month', service_date) from audited_group
    );
