-- one MCO's findings ($payer), every policy's, in package order
select *
from audit.findings
where payer = $payer
order by policy_id, payer, claim_id, claim_line_number, rule_id
