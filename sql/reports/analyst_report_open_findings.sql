-- the open findings as the analyst report counts them: by policy, MCO, rule and the date
-- each was first found (the age chart), a row per group, however many findings there are
select policy_id, payer, rule_id, first_found_date, count(*) as findings
from audit.findings
where status = 'open'
group by all
