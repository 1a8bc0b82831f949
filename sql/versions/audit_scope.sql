-- the claims tonight's audit looks at again, when an earlier audit saw all the others:
--   audited_claim: touched claims (touched_claims.sql), and the claims with a line on the
--     same peer's day or the same member's day as a line of a touched claim, before or after
--     tonight's deliveries. Only group sessions (a peer's day) and duplicates (a member's
--     day) tie lines of different claims together, so no other claim's facts can change.
--   context_claim: audited claims, and the claims sharing such a day with their lines, so
--     that every session and duplicate group of an audited line is complete.
-- needs touched_line: the current in-scope lines of the touched claims (payer, claim_id,
-- peer_npi, member_id, service_date).

create or replace temp table audited_claim as
with seed_line as (
    select peer_npi, member_id, service_date from touched_line
    union all
    select line.peer_npi, line.member_id, line.service_date
    from audit.audited_lines as line
    semi join touched_claim using (payer, claim_id)
),
tied_claim as (
    select line.payer, line.claim_id
    from audit.audited_lines as line
    semi join seed_line using (peer_npi, service_date)
    union
    select line.payer, line.claim_id
    from audit.audited_lines as line
    semi join seed_line using (member_id, service_date)
)
select payer, claim_id from touched_claim
union
select payer, claim_id from tied_claim;

create or replace temp table context_claim as
with audited_line as (
    select peer_npi, member_id, service_date from touched_line
    union all
    select line.peer_npi, line.member_id, line.service_date
    from audit.audited_lines as line
    semi join audited_claim using (payer, claim_id)
    anti join touched_claim using (payer, claim_id)
),
tied_claim as (
    select line.payer, line.claim_id
    from audit.audited_lines as line
    semi join audited_line using (peer_npi, service_date)
    union
    select line.payer, line.claim_id
    from audit.audited_lines as line
    semi join audited_line using (member_id, service_date)
)
select payer, claim_id from audited_claim
union
select payer, claim_id from tied_claim;
