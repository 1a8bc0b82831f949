-- one row per (payer, rule) issue, as the KanCare Open Claims Resolution Log tracks it
with findings_by_issue as (
    select
        payer,
        rule_id,
        min(first_found_date) as date_identified,
        count(*) filter (where status = 'open') as lines_open,
        coalesce(sum(paid_amount) filter (where status = 'open'), 0) as amount_open,
        count(*) filter (where status like 'resolved%') as lines_resolved,
        count(*) filter (where status = 'waived') as lines_waived
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
        when issue.lines_resolved > 0 then 'resolved'
        else 'waived'
    end as status,
    mco.implemented_date as mco_implemented_date,
    mco.reprocessing_completed_date,
    issue.lines_waived
from findings_by_issue as issue
left join rule_issues using (rule_id)
left join (
    select payer, min(implemented_date) as implemented_date,
        max(reprocessing_completed_date) as reprocessing_completed_date
    from ref.mco_implementation
    group by payer
) as mco using (payer)
order by issue.payer, issue.rule_id
