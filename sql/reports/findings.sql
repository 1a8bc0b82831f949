-- every finding of every policy, in the order findings.csv lists them
select *
from audit.findings
order by policy_id, payer, claim_id, claim_line_number, rule_id
