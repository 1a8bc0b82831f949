-- keep, of a nightly run's in-scope lines (temp table in_scope_line: every line of the claims
-- in scope), the lines of the claims it audits (temp table claim_to_audit) and every line in
-- a group with one of theirs: the same peer's day ($peer_day), member's day ($member_day) or
-- member's month ($member_month), the pack's ties. Those complete every group an audited
-- line is in; a context claim's lines on other days are in none, and at state scale they
-- were most of the lines a night built facts for (a claim bills several days).

create or replace temp table in_scope_line as
with audited_line as materialized (
    select * from in_scope_line semi join claim_to_audit using (payer, claim_id)
)
select * from audited_line
union
select line.*
from in_scope_line as line
semi join audited_line using (peer_npi, service_date)
where $peer_day
union
select line.*
from in_scope_line as line
semi join audited_line using (member_id, service_date)
where $member_day
union
select line.*
from in_scope_line as line
semi join audited_line
    on audited_line.member_id = line.member_id
    and date_trunc('month', audited_line.service_date) = date_trunc('month', line.service_date)
where $member_month;
