-- fold tonight's findings (temp table current_findings) into the reprocessing log of the
-- policy $policy_id. a finding is (policy_id, payer, claim_id, claim_line_number, rule_id);
-- nothing is ever deleted, and another policy's findings are never read or written.
-- with $every_claim false, tonight's audit looked only at the claims registered as
-- audited_claims: the findings of other claims are left as they are.

create or replace temp table finding_changes as
with logged as (
    select * from audit.findings where policy_id = $policy_id
),
previous_state as (
    -- a claim outside claim_versions has no correction: it is current
    select logged.*, coalesce(version.is_current, true) as claim_is_current
    from logged
    left join audit.claim_versions as version using (payer, claim_id)
    where $every_claim
        or exists (
            select 1
            from audited_claims as claim
            where claim.payer = logged.payer and claim.claim_id = logged.claim_id
        )
),
produced_again as (
    -- a closed finding produced again reopens; a waived one stays waived
    select previous_state.payer, previous_state.claim_id, previous_state.claim_line_number,
        previous_state.rule_id, previous_state.status as from_status, 'open' as to_status,
        'produced again' as note
    from previous_state
    join current_findings using (payer, claim_id, claim_line_number, rule_id)
    where previous_state.status not in ('open', 'waived')
),
no_longer_produced as (
    select previous_state.*
    from previous_state
    anti join current_findings using (payer, claim_id, claim_line_number, rule_id)
    where previous_state.status = 'open'
),
closed as (
    select gone.payer, gone.claim_id, gone.claim_line_number, gone.rule_id,
        'open' as from_status,
        case
            when gone.claim_is_current then 'resolved_data_corrected'
            when successor.claim_id is not null then 'superseded'
            else 'resolved_reprocessed'
        end as to_status,
        case
            when gone.claim_is_current then 'no longer produced; the claim was not reprocessed'
            when successor.claim_id is not null then 'replaced by claim ' || successor.claim_id
            else 'the claim was voided or replaced without this problem'
        end as note
    from no_longer_produced as gone
    left join current_findings as successor
        on successor.payer = gone.payer
        and successor.chain_root_id = gone.chain_root_id
        and successor.claim_line_number = gone.claim_line_number
        and successor.rule_id = gone.rule_id
        and not gone.claim_is_current
),
first_seen as (
    select current_findings.payer, current_findings.claim_id,
        current_findings.claim_line_number, current_findings.rule_id,
        null as from_status, 'open' as to_status, 'first found' as note
    from current_findings
    anti join logged using (payer, claim_id, claim_line_number, rule_id)
)
select * from produced_again
union all select * from closed
union all select * from first_seen;

insert into audit.finding_history (
    policy_id, payer, claim_id, claim_line_number, rule_id, run_id, changed_on, from_status,
    to_status, note, changed_by
)
select $policy_id, payer, claim_id, claim_line_number, rule_id, $run_id, $as_of, from_status,
    to_status, note, 'claims-audit run'
from finding_changes;

-- closing keeps the last evidence as it was; the status and date say what happened
update audit.findings as findings
set status = changes.to_status, resolved_date = $as_of
from finding_changes as changes
where findings.policy_id = $policy_id
    and findings.payer = changes.payer and findings.claim_id = changes.claim_id
    and findings.claim_line_number = changes.claim_line_number
    and findings.rule_id = changes.rule_id
    and changes.from_status = 'open';

-- found again: its last found date moves (every finding found tonight); a closed one reopens.
-- tested by key rather than joined: DuckDB holds every row of an update joined to another
-- table in memory, and a full audit finds millions again
update audit.findings as findings
set last_found_date = $as_of,
    status = case when findings.status = 'waived' then 'waived' else 'open' end,
    resolved_date = case when findings.status = 'waived' then findings.resolved_date end
where findings.policy_id = $policy_id
    and (findings.payer, findings.claim_id, findings.claim_line_number, findings.rule_id) in (
        select payer, claim_id, claim_line_number, rule_id from current_findings
    );

-- its evidence, where it changed: those findings are written again, whole, with tonight's
-- evidence. Rewriting every text column of every finding found again would cost minutes a
-- night at state scale, for the few whose evidence moved; and an update joined to tonight's
-- findings holds every row it changes in DuckDB's memory, which a night of many changed
-- reference rows at 30 million lines ran out of.
create or replace temp table finding_with_new_evidence as
select findings.* replace (
    found.severity as severity,
    found.detail as detail,
    found.mco_detail as mco_detail,
    found.member_id as member_id,
    found.peer_npi as peer_npi,
    found.billing_npi as billing_npi,
    found.service_date as service_date,
    found.paid_amount as paid_amount,
    found.amount_at_risk as amount_at_risk,
    found.paid_date as paid_date,
    found.pre_implementation as pre_implementation
)
from audit.findings as findings
join current_findings as found using (payer, claim_id, claim_line_number, rule_id)
where findings.policy_id = $policy_id
    and (
        findings.severity is distinct from found.severity
        or findings.detail is distinct from found.detail
        or findings.mco_detail is distinct from found.mco_detail
        or findings.member_id is distinct from found.member_id
        or findings.peer_npi is distinct from found.peer_npi
        or findings.billing_npi is distinct from found.billing_npi
        or findings.service_date is distinct from found.service_date
        or findings.paid_amount is distinct from found.paid_amount
        or findings.amount_at_risk is distinct from found.amount_at_risk
        or findings.paid_date is distinct from found.paid_date
        or findings.pre_implementation is distinct from found.pre_implementation
    );

delete from audit.findings as findings
where findings.policy_id = $policy_id
    and (findings.payer, findings.claim_id, findings.claim_line_number, findings.rule_id) in (
        select payer, claim_id, claim_line_number, rule_id from finding_with_new_evidence
    );

insert into audit.findings by name
select * from finding_with_new_evidence;

-- a replacing line that still breaks the rule keeps the first_found_date of the finding
-- it supersedes (closed as superseded just above, or on an earlier night), names it, and
-- keeps its notice and due date: replacing a claim without mending it restarts no clock
insert into audit.findings (
    policy_id, payer, claim_id, claim_line_number, rule_id, chain_root_id, member_id, peer_npi,
    billing_npi, service_date, paid_amount, amount_at_risk, paid_date, severity, detail,
    mco_detail, status, first_found_date, last_found_date, resolved_date, pre_implementation,
    finding_id, supersedes_finding_id, notified_date, due_date, outside_lookback
)
select $policy_id, found.payer, found.claim_id, found.claim_line_number, found.rule_id,
    found.chain_root_id, found.member_id, found.peer_npi, found.billing_npi, found.service_date,
    found.paid_amount, found.amount_at_risk, found.paid_date, found.severity, found.detail,
    found.mco_detail, 'open', coalesce(predecessor.first_found_date, $as_of), $as_of, null,
    found.pre_implementation,
    audit.finding_id(
        $policy_id, found.payer, found.claim_id, found.claim_line_number, found.rule_id
    ),
    predecessor.finding_id, predecessor.notified_date, predecessor.due_date, false
from current_findings as found
anti join (
    select payer, claim_id, claim_line_number, rule_id
    from audit.findings
    where policy_id = $policy_id
) as logged using (payer, claim_id, claim_line_number, rule_id)
left join (
    select payer, chain_root_id, claim_line_number, rule_id,
        min(first_found_date) as first_found_date,
        -- the one closed last: a chain replaced twice supersedes its findings one by one
        arg_max(finding_id, (resolved_date, claim_id)) as finding_id,
        min(notified_date) as notified_date,
        min(due_date) as due_date
    from audit.findings
    where policy_id = $policy_id and status = 'superseded'
    group by all
) as predecessor
    on predecessor.payer = found.payer
    and predecessor.chain_root_id = found.chain_root_id
    and predecessor.claim_line_number = found.claim_line_number
    and predecessor.rule_id = found.rule_id;
