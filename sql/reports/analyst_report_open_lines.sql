-- the claim lines with open findings, by policy, MCO and whether paid before the MCO
-- implemented the policy. a line that breaks several rules is paid once: it counts once, with
-- the largest amount any of its findings puts at stake (its amount at risk, or the whole paid
-- amount when it names none), and that finding's pre-implementation flag
with open_findings as (
    select policy_id, payer, claim_id, claim_line_number, pre_implementation,
        coalesce(amount_at_risk, paid_amount) as amount_at_stake
    from audit.findings
    where status = 'open'
),
lines_with_open_findings as (
    select policy_id, payer, claim_id, claim_line_number,
        max(amount_at_stake) as amount_at_stake,
        arg_max(pre_implementation, amount_at_stake) as pre_implementation
    from open_findings
    group by all
)
select policy_id, payer, pre_implementation, count(*) as lines,
    sum(amount_at_stake) as amount_at_stake
from lines_with_open_findings
group by all
