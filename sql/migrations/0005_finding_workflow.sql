-- migration 0005: from finding to reprocessed claim (docs/workflow.md). Every finding gets a
-- stable ID and the name of the finding it supersedes; the log records when a finding was
-- notified to its MCO, when it is due and since when it is overdue, the MCO's response, the
-- analyst's review of a dispute, and whether it lies outside the lookback. Holds on providers,
-- the response files taken and their rejected rows are tables of their own. Every history row
-- says who made the change (`changed_by`) and, beside a change of status, which event of the
-- workflow it records (`event`; null: a change of status made by the audit).

-- a finding's ID: its key (policy, payer, claim, line, rule), hashed. The same finding gets the
-- same ID on every run, in every output and after a database is rebuilt from the deliveries;
-- 64 bits keep the chance of two findings sharing one below one in a million at 10 million
-- findings. chr(31), the unit separator, cannot occur in a key value read from text.
create or replace macro audit.finding_id(policy_id, payer, claim_id, claim_line_number, rule_id)
as 'F-' || upper(left(sha256(concat_ws(
    chr(31), policy_id, payer, claim_id, claim_line_number::varchar, rule_id
)), 16));

alter table audit.findings add column finding_id varchar;
alter table audit.findings add column supersedes_finding_id varchar;
alter table audit.findings add column billing_npi varchar;
alter table audit.findings add column notified_date date;
alter table audit.findings add column due_date date;
alter table audit.findings add column overdue_since date;
alter table audit.findings add column response varchar;       -- agree | dispute | corrected
alter table audit.findings add column response_date date;
alter table audit.findings add column response_comment varchar;
alter table audit.findings add column planned_date date;
alter table audit.findings add column review varchar;         -- disputed | upheld | waived
alter table audit.findings add column outside_lookback boolean default false;

alter table audit.finding_history add column event varchar;
alter table audit.finding_history add column changed_by varchar;

-- the rows written before: by the audit's runs, or by the analyst who waived
update audit.finding_history as history
set changed_by = coalesce(
    case when history.run_id is not null then 'claims-audit run' end,
    findings.waived_by,
    'claims-audit run'
),
    event = case when history.to_status = 'waived' and history.run_id is null then 'waived' end
from audit.findings as findings
where findings.policy_id = history.policy_id and findings.payer = history.payer
    and findings.claim_id = history.claim_id
    and findings.claim_line_number = history.claim_line_number
    and findings.rule_id = history.rule_id;

-- before this release every finding went out in its MCO's package on the night it was first
-- found: that night is its notice (the due date follows from the configured allowance on the
-- next run, pipelines/log/workflow.py)
update audit.findings as findings
set finding_id = audit.finding_id(
        findings.policy_id, findings.payer, findings.claim_id, findings.claim_line_number,
        findings.rule_id
    ),
    notified_date = coalesce(found.first_found_on, findings.first_found_date),
    billing_npi = line.billing_npi
from audit.findings as logged
left join (
    select policy_id, payer, claim_id, claim_line_number, rule_id,
        min(changed_on) as first_found_on
    from audit.finding_history
    where from_status is null
    group by all
) as found using (policy_id, payer, claim_id, claim_line_number, rule_id)
left join (
    select payer, claim_id, claim_line_number,
        arg_max(billing_npi, (delivery_id, source_row)) as billing_npi
    from raw.claim_lines
    group by all
) as line using (payer, claim_id, claim_line_number)
where findings.policy_id = logged.policy_id and findings.payer = logged.payer
    and findings.claim_id = logged.claim_id
    and findings.claim_line_number = logged.claim_line_number
    and findings.rule_id = logged.rule_id;

-- a finding on a replacing claim supersedes the finding of its chain (same line and rule)
-- closed as superseded last before it was first found
update audit.findings as findings
set supersedes_finding_id = predecessor.finding_id
from (
    select successor.policy_id, successor.payer, successor.claim_id,
        successor.claim_line_number, successor.rule_id,
        arg_max(superseded.finding_id, (superseded.resolved_date, superseded.claim_id))
            as finding_id
    from audit.findings as successor
    join audit.findings as superseded
        on superseded.policy_id = successor.policy_id
        and superseded.payer = successor.payer
        and superseded.chain_root_id = successor.chain_root_id
        and superseded.claim_line_number = successor.claim_line_number
        and superseded.rule_id = successor.rule_id
        and superseded.claim_id <> successor.claim_id
        and superseded.status = 'superseded'
        and superseded.resolved_date <= successor.notified_date
    group by all
) as predecessor
where findings.policy_id = predecessor.policy_id and findings.payer = predecessor.payer
    and findings.claim_id = predecessor.claim_id
    and findings.claim_line_number = predecessor.claim_line_number
    and findings.rule_id = predecessor.rule_id;

insert into audit.finding_history (
    policy_id, payer, claim_id, claim_line_number, rule_id, run_id, changed_on, from_status,
    to_status, note, event, changed_by
)
select policy_id, payer, claim_id, claim_line_number, rule_id, null, notified_date, 'open',
    'open', 'in the MCO package since first found (notices were not recorded before)',
    'notified', 'schema migration 0005'
from audit.findings;

-- a provider's findings kept out of every MCO package while the hold lasts
create table audit.holds (
    hold_id integer primary key,
    npi varchar not null,
    reason varchar not null,
    held_by varchar not null,
    held_on date not null,
    released_by varchar,
    released_on date,
    release_note varchar
);

-- one row per MCO response file looked at, known by its content: a file taken again changes
-- nothing. A rejected file (a folder that names no MCO, an odd file name, no finding_id or
-- response column) has its reason and no payer when its folder named none.
create table audit.response_files (
    response_file_id integer primary key,
    payer varchar,
    source_file varchar not null,
    content_sha256 varchar not null,
    taken_on date not null,
    taken_by varchar not null,
    status varchar not null,      -- taken | rejected
    reason varchar
);

-- every row of a response file that answered a finding, as it was read: taken, unchanged (the
-- finding already had that answer) or rejected with its reason. The finding keeps the last
-- answer taken; these rows keep every one.
create table audit.response_rows (
    response_file_id integer not null,
    row_number bigint not null,   -- as a spreadsheet numbers it: the header is row 1
    finding_id varchar,           -- as the row gave it
    response varchar,
    comment varchar,
    planned_date date,
    outcome varchar not null,     -- taken | unchanged | rejected
    reason varchar
);

-- every finding with what the holds in force make of it: `held` while a hold on its billing or
-- rendering provider lasts; `in_mco_package` when its MCO's package shows it (notified, not
-- held, not outside the lookback); `overdue` when it is open, in the package and past its
-- deadline at the last run (docs/workflow.md). Made here rather than in ddl/views.sql, which
-- every connect runs, also on a database migrated only part of the way (tests do): a later
-- change to it is a migration of its own.
create or replace view audit.finding_states as
with held_provider as (
    select distinct npi from audit.holds where released_on is null
),
with_hold as (
    select findings.*,
        exists (
            select 1 from held_provider
            where held_provider.npi in (findings.peer_npi, findings.billing_npi)
        ) as held
    from audit.findings as findings
)
select *,
    notified_date is not null and not coalesce(outside_lookback, false) and not held
        as in_mco_package,
    status = 'open' and overdue_since is not null and not coalesce(outside_lookback, false)
        and not held as overdue
from with_hold;
