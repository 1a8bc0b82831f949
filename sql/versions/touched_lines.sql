-- the days through which tonight's touched claims (temp table touched_claim) can tie other
-- claims to theirs: every in-scope copy of their lines ($codes), current or not. Their current in-scope
-- lines are among these; a replaced copy or a superseded version's line can only widen the
-- scope, which means a few more lines audited again and never a different finding.

create or replace temp table touched_line as
select
    payer,
    claim_id,
    coalesce(rendering_npi, billing_npi) as peer_npi,
    member_id,
    claim_line_start_date as service_date,
    place_of_service_code,
    session_id,
    -- each modifier as the facts read it
    upper(trim(hcpcs_modifier_1)) as hcpcs_modifier_1,
    upper(trim(hcpcs_modifier_2)) as hcpcs_modifier_2,
    upper(trim(hcpcs_modifier_3)) as hcpcs_modifier_3,
    upper(trim(hcpcs_modifier_4)) as hcpcs_modifier_4
from raw.claim_lines
semi join touched_claim using (payer, claim_id)
where list_contains($codes, upper(trim(hcpcs_code)));
