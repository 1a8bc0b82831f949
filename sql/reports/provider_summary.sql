-- program integrity's view of the providers behind the findings: one row per provider and role
-- (billing: the line's billing NPI; rendering: its rendering NPI, or its billing NPI when it
-- names none, as the rules read it), ranked by open findings and the amount they put at risk.
-- A superseded finding's problem carries on in its replacing line's finding: not counted.
-- The share is of the provider's current in-scope lines of every policy (audit.audited_lines:
-- for Parent Peer Support, its paid H0038 lines) that carry a finding of any status in that
-- role; a line in the scope of two policies counts under each, as its findings do.
with finding as (
    select payer, claim_id, claim_line_number, billing_npi, peer_npi, rule_id, status,
        coalesce(amount_at_risk, paid_amount) as amount, overdue, first_found_date,
        last_found_date, held
    from audit.finding_states
    where status <> 'superseded'
),
finding_by_role as (
    select 'billing' as role, billing_npi as npi, * exclude (billing_npi)
    from finding
    where billing_npi is not null
    union all by name
    select 'rendering' as role, peer_npi as npi, *
    from finding
    where peer_npi is not null
),
line_found as (
    select line.billing_npi, line.peer_npi,
        exists (
            select 1 from finding
            where finding.payer = line.payer and finding.claim_id = line.claim_id
                and finding.claim_line_number = line.claim_line_number
                and finding.billing_npi = line.billing_npi
        ) as billing_found,
        exists (
            select 1 from finding
            where finding.payer = line.payer and finding.claim_id = line.claim_id
                and finding.claim_line_number = line.claim_line_number
                and finding.peer_npi = line.peer_npi
        ) as rendering_found
    from audit.audited_lines as line
),
lines_of_provider as (
    select role, npi, count(*) as in_scope_lines,
        count(*) filter (where found) as in_scope_lines_with_findings
    from (
        select 'billing' as role, billing_npi as npi, billing_found as found
        from line_found
        where billing_npi is not null
        union all
        select 'rendering' as role, peer_npi as npi, rendering_found as found
        from line_found
    )
    group by all
),
provider_name as (
    select npi, arg_min(provider_name, (delivery_id, source_row)) as provider_name
    from ref.providers
    group by npi
),
by_provider_rule_and_mco as (
    -- one pass over the findings; a provider's rules and MCOs are then read from these few rows
    select role, npi, rule_id, payer,
        count(*) filter (where status = 'open') as open_findings,
        coalesce(sum(amount) filter (where status = 'open'), 0) as amount_open,
        count(*) filter (where overdue) as overdue_findings,
        count(*) as findings,
        min(first_found_date) as first_found_date,
        max(last_found_date) as last_found_date,
        bool_or(held) as held
    from finding_by_role
    group by all
),
by_provider as (
    select role, npi,
        sum(open_findings)::bigint as open_findings,
        sum(amount_open) as amount_open,
        sum(overdue_findings)::bigint as overdue_findings,
        sum(findings)::bigint as findings,
        string_agg(distinct rule_id, ' ' order by rule_id) as rules,
        string_agg(distinct payer, ' ' order by payer) as mcos,
        min(first_found_date) as first_found_date,
        max(last_found_date) as last_found_date,
        bool_or(held) as held
    from by_provider_rule_and_mco
    group by all
)
select by_provider.npi, by_provider.role, provider_name.provider_name,
    by_provider.open_findings, by_provider.amount_open, by_provider.overdue_findings,
    by_provider.findings, by_provider.rules, by_provider.mcos, by_provider.first_found_date,
    by_provider.last_found_date, coalesce(lines.in_scope_lines, 0) as in_scope_lines,
    coalesce(lines.in_scope_lines_with_findings, 0) as in_scope_lines_with_findings,
    round(
        coalesce(lines.in_scope_lines_with_findings, 0) / nullif(lines.in_scope_lines, 0), 4
    ) as share_of_lines_with_findings,
    by_provider.held
from by_provider
left join provider_name using (npi)
left join lines_of_provider as lines using (role, npi)
order by by_provider.open_findings desc, by_provider.amount_open desc, by_provider.npi,
    by_provider.role
