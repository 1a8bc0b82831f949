-- one MCO's findings ($payer) as its package shows them (notified, not held, inside the
-- lookback: docs/workflow.md), of one policy or of all ($policy_id null), in package order:
-- $count of them (null: all) from the $skip-th on, so a long sheet is read a part at a time;
-- days overdue counted to $as_of
select *, case when overdue then $as_of::date - overdue_since + 1 end as days_overdue
from audit.finding_states
where payer = $payer
    and in_mco_package
    and ($policy_id is null or policy_id = $policy_id)
order by policy_id, payer, claim_id, claim_line_number, rule_id
limit $count
offset $skip
