-- keep the policy $policy_id's audit.audited_lines as tonight's audit left them: the audited
-- claims' lines replaced by tonight's facts (temp table current_facts); with
-- $every_claim, all of them. Another policy's lines are left alone.

delete from audit.audited_lines
where $every_claim and policy_id = $policy_id;

delete from audit.audited_lines as line
using audited_claims as claim
where line.policy_id = $policy_id
    and line.payer = claim.payer and line.claim_id = claim.claim_id;

insert into audit.audited_lines (
    policy_id, payer, claim_id, claim_line_number, peer_npi, billing_npi, member_id,
    service_date, place_of_service_code, session_id, hcpcs_modifier_1, hcpcs_modifier_2,
    hcpcs_modifier_3, hcpcs_modifier_4
)
select $policy_id, payer, claim_id, claim_line_number, peer_npi, billing_npi, member_id,
    service_date, place_of_service_code, session_id, hcpcs_modifier_1, hcpcs_modifier_2,
    hcpcs_modifier_3, hcpcs_modifier_4
from current_facts;
