-- widen the temp table scope_claim by every claim with a line on the same peer's day
-- ($peer_day), the same member's day ($member_day) or the same member's month ($member_month)
-- as a line of a scope claim, before or after tonight's deliveries: the ways a pack says its
-- lines' facts depend on other lines (its related_lines: a group session is a peer's day, a
-- duplicate a member's day, a monthly unit cap a member's month). Widened once from the
-- touched claims, it gives the claims whose facts can have changed; widened again, every
-- claim an audited line shares such a group with, so that those groups are complete.
-- needs touched_line (touched_lines.sql): the in-scope lines of the touched claims;
-- audit.audited_lines holds every other claim's lines: those of the policy $policy_id, whose
-- lines are the only ones its rules tie together.

create or replace temp table tied_by_day as
with audited_line as (
    select * from audit.audited_lines where policy_id = $policy_id
),
scope_line as (
    select peer_npi, member_id, service_date from touched_line
    union all
    select line.peer_npi, line.member_id, line.service_date
    from audited_line as line
    semi join scope_claim using (payer, claim_id)
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
