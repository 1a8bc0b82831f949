-- one MCO's findings ($payer), of one policy or of all ($policy_id null), in package order:
-- $count of them (null: all) from the $skip-th on, so a long sheet is read a part at a time
select *
from audit.findings
where payer = $payer
    and ($policy_id is null or policy_id = $policy_id)
order by policy_id, payer, claim_id, claim_line_number, rule_id
limit $count
offset $skip
