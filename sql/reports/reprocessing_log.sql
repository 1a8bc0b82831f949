-- one row per (payer, rule) issue, as the KanCare Open Claims Resolution Log tracks it.
-- a superseded finding's problem carries on in its replacing line's finding: superseded lines
-- are counted in their own column and do not decide the issue's status.
with findings_by_issue as (
    select
        payer,
        rule_id,
        min(first_found_date) as date_identified,
        count(*) filter (where status = 'open') as lines_open,
        coalesce(sum(paid_amount) filter (where status = 'open'), 0) as amount_open,
        count(*) filter (where status like 'resolved%') as lines_resolved,
        count(*) filter (where status = 'waived') as lines_waived,
        count(*) filter (where status = 'superseded') as lines_superseded
    from audit.findings
    group by payer, rule_id
)
select
    issue.payer,
    issue.rule_id,
    rule_issues.issue_description,
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
    issue.lines_superseded
from findings_by_issue as issue
left join rule_issues using (rule_id)
left join (
    select payer, min(implemented_date) as implemented_date,
        max(reprocessing_completed_date) as reprocessing_completed_date
    from ref.mco_implementation
    group by payer
) as mco using (payer)
order by issue.payer, issue.rule_id
