-- migration 0001: the schema of release 0.1 (raw deliveries, reference snapshots, and the
-- reprocessing log), as that release left its database. A release-0.1 database has no
-- audit.schema_migrations: every statement here is `if not exists`, so on such a file this
-- migration changes nothing and only its version is recorded.

create schema if not exists raw;
create schema if not exists ref;
create schema if not exists audit;

-- one row per input file ever seen, keyed by content: the manifest
create table if not exists audit.deliveries (
    delivery_id integer primary key,
    run_id integer,
    loaded_on date not null,
    kind varchar not null,            -- claims | reference
    dataset varchar not null,         -- claims, or the reference file's name (members, ...)
    payer varchar,
    source_file varchar not null,     -- path relative to the input folder
    content_sha256 varchar not null,
    status varchar not null,          -- loaded | rejected | held_back (reference snapshots)
    reason varchar,
    rows_read bigint not null default 0,
    rows_loaded bigint not null default 0,
    rows_quarantined bigint not null default 0,
    payer_mismatches bigint not null default 0
);

create table if not exists audit.quarantine (
    delivery_id integer not null,
    source_file varchar not null,
    row_number bigint not null,
    reason varchar not null,
    raw_row varchar
);

-- one row per run that audited something new
create table if not exists audit.runs (
    run_id integer primary key,
    as_of date not null,
    last_delivery_id integer not null,
    policy_sha256 varchar not null,
    in_scope_lines bigint not null,
    findings_produced bigint not null,
    -- the hash of everything that decides a finding (pipelines/audit/identity.py): a run
    -- builds on the last audit only when it is the same
    audit_identity varchar
);
-- a database made before release 0.1 lacks it: its runs have none, so the first run after
-- the upgrade audits everything
alter table audit.runs add column if not exists audit_identity varchar;

create table if not exists raw.claim_lines (
    delivery_id integer not null,
    source_row bigint not null,
    payer varchar not null,
    claim_id varchar not null,
    claim_line_number integer not null,
    claim_frequency_code varchar not null,
    original_claim_id varchar,
    member_id varchar not null,
    rendering_npi varchar,
    billing_npi varchar not null,
    hcpcs_code varchar not null,
    hcpcs_modifier_1 varchar,
    hcpcs_modifier_2 varchar,
    hcpcs_modifier_3 varchar,
    hcpcs_modifier_4 varchar,
    claim_line_start_date date not null,
    claim_line_end_date date not null,
    place_of_service_code varchar,
    service_unit_quantity decimal(18, 4) not null,
    paid_amount decimal(18, 2) not null,
    paid_date date not null,
    session_id varchar,
    payer_in_file varchar,
    extra_columns varchar            -- json object of columns outside the contract
);

-- the current version of every claim chain, rebuilt after each load
create table if not exists audit.claim_versions (
    payer varchar not null,
    claim_id varchar not null,
    chain_root_id varchar not null,
    claim_frequency_code varchar not null,
    paid_date date,
    is_current boolean not null
);

-- the in-scope lines the last audit saw, by the values that tie lines together across
-- claims (a peer's day: group sessions; a member's day: duplicates). A nightly run audits
-- again only the claims its deliveries touched and the claims tied to them this way.
create table if not exists audit.audited_lines (
    payer varchar not null,
    claim_id varchar not null,
    claim_line_number integer not null,
    peer_npi varchar not null,
    member_id varchar not null,
    service_date date not null
);

create table if not exists ref.members (
    member_id varchar, date_of_birth date, delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.enrollment (
    member_id varchar, payer varchar, start_date date, end_date date,
    delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.providers (
    npi varchar, provider_name varchar, enrollment_start_date date, enrollment_end_date date,
    pps_start_date date, lived_experience_attested varchar, lived_experience_attested_date date,
    date_of_birth date, delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.level_of_care (
    member_id varchar, loc_category varchar, loc_type varchar, start_date date, end_date date,
    delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.treatment_plans (
    plan_id varchar, member_id varchar, start_date date, end_date date, includes_pps varchar,
    signed_date date, practitioner_npi varchar, practitioner_license_type varchar,
    delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.consents (
    member_id varchar, consent_type varchar, signed_date date, revoked_date date,
    delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.caregivers (
    caregiver_id varchar, member_id varchar, relationship varchar, date_of_birth date,
    medicaid_id varchar, start_date date, end_date date, delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.service_participants (
    payer varchar, claim_id varchar, claim_line_number integer, caregiver_id varchar,
    non_medicaid_participant varchar, direct_benefit_documented varchar,
    delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
create table if not exists ref.mco_implementation (
    payer varchar, implemented_date date, reprocessing_completed_date date,
    delivery_id integer, source_row bigint,
    extra_columns varchar  -- json object of columns outside the contract
);
-- the reprocessing log: one row per (line, rule) finding, never deleted
create table if not exists audit.findings (
    payer varchar not null,
    claim_id varchar not null,
    claim_line_number integer not null,
    rule_id varchar not null,
    chain_root_id varchar not null,
    member_id varchar not null,
    peer_npi varchar,
    service_date date not null,
    paid_amount decimal(18, 2) not null,
    paid_date date not null,
    severity varchar not null,
    detail varchar not null,
    status varchar not null,
    first_found_date date not null,
    last_found_date date not null,
    resolved_date date,
    pre_implementation boolean not null,
    waived_reason varchar,
    waived_by varchar,
    -- the detail as the paying MCO's package shows it: never another MCO's claim or
    -- enrollment; null on a finding last produced before it existed
    mco_detail varchar,
    primary key (payer, claim_id, claim_line_number, rule_id)
);
-- a database made before release 0.1 lacks it
alter table audit.findings add column if not exists mco_detail varchar;

create table if not exists audit.finding_history (
    payer varchar not null,
    claim_id varchar not null,
    claim_line_number integer not null,
    rule_id varchar not null,
    run_id integer,
    changed_on date not null,
    from_status varchar,
    to_status varchar not null,
    note varchar
);
