-- every finding of every policy, in the order findings.csv lists them, with its state in the
-- workflow (audit.finding_states) and its days overdue on $as_of
select *, case when overdue then $as_of::date - overdue_since + 1 end as days_overdue
from audit.finding_states
order by policy_id, payer, claim_id, claim_line_number, rule_id
