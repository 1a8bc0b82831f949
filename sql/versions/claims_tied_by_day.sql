-- widen the temp table scope_claim by every claim with a line on the same peer's day or the
-- same member's day as a line of a scope claim, before or after tonight's deliveries.
-- only group sessions (a peer's day) and duplicates (a member's day) tie lines of different
-- claims together. Widened once from the touched claims, it gives the claims whose facts can
-- have changed; widened again, every claim an audited line shares a session or a duplicate
-- group with, so that those groups are complete.
-- needs touched_line (touched_lines.sql): the H0038 lines of the touched claims;
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
union
select line.payer, line.claim_id
from audited_line as line
semi join scope_line using (member_id, service_date);

create or replace temp table scope_claim as from tied_by_day;
