-- how many of tonight's findings (temp table current_findings) appear more than once: a
-- finding is one (payer, claim_id, claim_line_number, rule_id) of the policy being logged
select count(*)
from (
    select payer, claim_id, claim_line_number, rule_id
    from current_findings
    group by all
    having count(*) > 1
) as named_twice
