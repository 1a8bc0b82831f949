-- one row per (policy, payer, rule) issue, as the KanCare Open Claims Resolution Log tracks it.
-- a superseded finding's problem carries on in its replacing line's finding: superseded lines
-- are counted in their own column and do not decide the issue's status.
-- registered by the caller: policy_rules (policy_id, rule_id, issue_description) and
-- policy_bulletins (policy_id, bulletin), the bulletin that mco_implementation's `policy` names.
-- the workflow (docs/workflow.md): what is due and overdue on $as_of counts the open findings
-- in their MCO's package; held findings and those outside the lookback are counted apart.
-- With $mco_view, the rows an MCO's package shows: only the findings its package shows.
with finding as (
    select *,
        coalesce(amount_at_risk, paid_amount) as amount,
        status = 'open' and in_mco_package as due,
        case when overdue then $as_of::date - overdue_since + 1 end as days_overdue
    from audit.finding_states
    where not $mco_view or in_mco_package
),
findings_by_issue as (
    select
        policy_id,
        payer,
        rule_id,
        min(first_found_date) as date_identified,
        count(*) filter (where status = 'open') as lines_open,
        -- the amount at risk: a finding may put only part of the paid amount at risk
        coalesce(
            sum(coalesce(amount_at_risk, paid_amount)) filter (where status = 'open'), 0
        ) as amount_open,
        count(*) filter (where status like 'resolved%') as lines_resolved,
        count(*) filter (where status = 'waived') as lines_waived,
        count(*) filter (where status = 'superseded') as lines_superseded,
        count(*) filter (where due and not overdue) as lines_due,
        coalesce(sum(amount) filter (where due and not overdue), 0) as amount_due,
        count(*) filter (where overdue) as lines_overdue,
        coalesce(sum(amount) filter (where overdue), 0) as amount_overdue,
        count(*) filter (where days_overdue <= 30) as overdue_0_30_days,
        count(*) filter (where days_overdue between 31 and 60) as overdue_31_60_days,
        count(*) filter (where days_overdue between 61 and 90) as overdue_61_90_days,
        count(*) filter (where days_overdue > 90) as overdue_over_90_days,
        count(*) filter (where status = 'open' and review = 'disputed') as lines_disputed,
        count(*) filter (where status = 'open' and held) as lines_held,
        count(*) filter (where status = 'open' and outside_lookback) as lines_outside_lookback
    from finding
    group by policy_id, payer, rule_id
),
implementation_row as (
    -- a row naming the policy's bulletin speaks for that policy; a blank one for every policy
    select payer, nullif(trim(policy), '') as bulletin, implemented_date,
        reprocessing_completed_date
    from ref.mco_implementation
),
policy_payer as (
    select distinct issue.policy_id, issue.payer, policy_bulletins.bulletin
    from findings_by_issue as issue
    left join policy_bulletins using (policy_id)
),
implementation_for_policy as (
    -- the rows for the policy's own bulletin when the MCO sent any, else its blank-policy rows
    select policy_payer.policy_id, policy_payer.payer,
        min(row.implemented_date) as implemented_date,
        max(row.reprocessing_completed_date) as reprocessing_completed_date
    from policy_payer
    join implementation_row as row
        on row.payer = policy_payer.payer
        and (row.bulletin is null or row.bulletin = policy_payer.bulletin)
    group by policy_payer.policy_id, policy_payer.payer, row.bulletin is null
    qualify row_number() over (
        partition by policy_payer.policy_id, policy_payer.payer
        order by row.bulletin is null
    ) = 1
)
select
    issue.policy_id,
    issue.payer,
    issue.rule_id,
    policy_rules.issue_description,
    issue.date_identified,
    issue.lines_open,
    issue.amount_open,
    issue.lines_resolved,
    case
        when issue.lines_open > 0 then 'open'
        -- waived: the state waived every line that carries the issue
        when issue.lines_waived > 0 and issue.lines_resolved = 0 then 'waived'
        -- resolved lines, or only superseded lines: nothing is left to reprocess
        else 'resolved'
    end as status,
    mco.implemented_date as mco_implemented_date,
    mco.reprocessing_completed_date,
    issue.lines_waived,
    issue.lines_superseded,
    issue.lines_due,
    issue.amount_due,
    issue.lines_overdue,
    issue.amount_overdue,
    issue.overdue_0_30_days,
    issue.overdue_31_60_days,
    issue.overdue_61_90_days,
    issue.overdue_over_90_days,
    issue.lines_disputed,
    issue.lines_held,
    issue.lines_outside_lookback
from findings_by_issue as issue
left join policy_rules using (policy_id, rule_id)
left join implementation_for_policy as mco using (policy_id, payer)
order by issue.policy_id, issue.payer, issue.rule_id
