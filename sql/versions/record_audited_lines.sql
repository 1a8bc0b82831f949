-- keep audit.audited_lines as tonight's audit left it: the audited claims' lines replaced
-- by tonight's facts (registered as current_facts); with $every_claim, all of them.

delete from audit.audited_lines
where $every_claim;

delete from audit.audited_lines as line
using audited_claims as claim
where line.payer = claim.payer and line.claim_id = claim.claim_id;

insert into audit.audited_lines
select payer, claim_id, claim_line_number, peer_npi, member_id, service_date
from current_facts;
