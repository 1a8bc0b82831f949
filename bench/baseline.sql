-- The rules of both policies as one DuckDB script over a contract input folder: Parent Peer
-- Support (PPS001-PPS010, docs/rules.md), Community Health Worker services (CHW001-CHW006,
-- the rule catalog of KMAP bulletin 23175), and GEN001/GEN002 over each one's lines.
-- Written from the rule catalogs, apart from the pipeline, so that each checks the other and
-- the benchmark has a floor to measure against. It reads the CSV files of claims/<payer>/ and
-- reference/. Needs the variable input_dir (the input folder) and each policy's codes and
-- parameters, read by baseline.py from the packs' policy.toml: pps_<name> and chw_<name>
-- (pps_codes, pps_effective_date, ..., chw_daily_unit_limit, ...). Leaves the temp table
-- findings: one row per (policy_id, payer, claim_id, claim_line_number, rule_id) with its
-- severity, and in_scope: the current in-scope lines of both policies.

-- blank and whitespace-only values are absent values
create or replace temp macro blank(value) as nullif(trim(value), '');
-- YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD; the slower formats only where the shape fits
create or replace temp macro text_to_date(text) as coalesce(
    try_cast(text as date),
    case when text like '__/__/____' then try_strptime(text, '%m/%d/%Y')::date end,
    case when length(text) = 8 then try_strptime(text, '%Y%m%d')::date end
);
create or replace temp macro as_date(value) as text_to_date(blank(value));
create or replace temp macro bad_date(value) as blank(value) is not null and as_date(value) is null;
-- the contract's plausible birth dates (pipelines/settings.toml): a row born before 1900 is set aside
create or replace temp macro bad_birth_date(value) as
    bad_date(value) or coalesce(as_date(value) < date '1900-01-01', false);
create or replace temp macro flag_is_y(value) as coalesce(upper(blank(value)) = 'Y', false);
-- inclusive span, blank ends open
create or replace temp macro covers(span_start, span_end, day) as
    (span_start is null or span_start <= day) and (span_end is null or span_end >= day);
create or replace temp macro month_day(day) as month(day) * 100 + day(day);
create or replace temp macro years_apart(a, b, years) as case
    when a is null or b is null then false
    when year(greatest(a, b)) - year(least(a, b)) > years then true
    when year(greatest(a, b)) - year(least(a, b)) = years
        then month_day(greatest(a, b)) >= month_day(least(a, b))
    else false
end;
create or replace temp macro reference_file(name) as
    getvariable('input_dir') || '/reference/' || name || '.csv';

-- reference snapshots; rows with a blank key or an unreadable date are set aside
create or replace temp table mcos as
select distinct upper(blank(payer)) as payer
from read_csv(reference_file('mco_implementation'), all_varchar = true)
where blank(payer) is not null
    and not bad_date(implemented_date) and not bad_date(reprocessing_completed_date);

create or replace temp table members as
select blank(member_id) as member_id, as_date(date_of_birth) as date_of_birth
from read_csv(reference_file('members'), all_varchar = true)
where blank(member_id) is not null and not bad_birth_date(date_of_birth);

create or replace temp table enrollment as
select blank(member_id) as member_id, upper(blank(payer)) as payer,
    as_date(start_date) as start_date, as_date(end_date) as end_date
from read_csv(reference_file('enrollment'), all_varchar = true)
where blank(member_id) is not null and blank(payer) is not null
    and not bad_date(start_date) and not bad_date(end_date);

create or replace temp table providers as
select blank(npi) as npi, upper(blank(provider_type)) as provider_type,
    as_date(enrollment_start_date) as enrollment_start_date,
    as_date(enrollment_end_date) as enrollment_end_date,
    as_date(pps_start_date) as pps_start_date,
    flag_is_y(lived_experience_attested) as lived_experience_attested,
    as_date(lived_experience_attested_date) as lived_experience_attested_date,
    as_date(date_of_birth) as date_of_birth,
    -- the file's order decides which of several birth dates is used
    row_number() over () as file_row
from read_csv(reference_file('providers'), all_varchar = true)
where blank(npi) is not null
    and not bad_date(enrollment_start_date) and not bad_date(enrollment_end_date)
    and not bad_date(pps_start_date) and not bad_date(lived_experience_attested_date)
    and not bad_birth_date(date_of_birth);

create or replace temp table level_of_care as
select blank(member_id) as member_id, upper(blank(loc_category)) as loc_category,
    as_date(start_date) as start_date, as_date(end_date) as end_date
from read_csv(reference_file('level_of_care'), all_varchar = true)
where blank(member_id) is not null and blank(loc_category) is not null
    and not bad_date(start_date) and not bad_date(end_date);

create or replace temp table treatment_plans as
select blank(member_id) as member_id, as_date(start_date) as start_date,
    as_date(end_date) as end_date, flag_is_y(includes_pps) as includes_pps,
    as_date(signed_date) as signed_date,
    upper(blank(practitioner_license_type)) as practitioner_license_type
from read_csv(reference_file('treatment_plans'), all_varchar = true)
where blank(member_id) is not null
    and not bad_date(start_date) and not bad_date(end_date) and not bad_date(signed_date);

create or replace temp table consents as
select blank(member_id) as member_id, upper(blank(consent_type)) as consent_type,
    as_date(signed_date) as signed_date, as_date(revoked_date) as revoked_date
from read_csv(reference_file('consents'), all_varchar = true)
where blank(member_id) is not null and blank(consent_type) is not null
    and not bad_date(signed_date) and not bad_date(revoked_date);

create or replace temp table caregivers as
select blank(caregiver_id) as caregiver_id, blank(member_id) as member_id,
    as_date(date_of_birth) as date_of_birth, blank(medicaid_id) as medicaid_id,
    as_date(start_date) as start_date, as_date(end_date) as end_date,
    row_number() over () as file_row
from read_csv(reference_file('caregivers'), all_varchar = true)
where blank(caregiver_id) is not null and blank(member_id) is not null
    and not bad_birth_date(date_of_birth) and not bad_date(start_date)
    and not bad_date(end_date);

create or replace temp table service_participants as
select upper(blank(payer)) as payer, blank(claim_id) as claim_id,
    try_cast(blank(claim_line_number) as integer) as claim_line_number,
    blank(caregiver_id) as caregiver_id,
    flag_is_y(non_medicaid_participant) as non_medicaid_participant,
    flag_is_y(direct_benefit_documented) as direct_benefit_documented
from read_csv(reference_file('service_participants'), all_varchar = true)
where blank(payer) is not null and blank(claim_id) is not null
    and try_cast(blank(claim_line_number) as integer) >= 1;

-- deliveries in order: payer folder, then file name (the path sorts both)
create or replace temp table claim_files as
select file as source_file, row_number() over (order by file) as delivery_order
from glob(getvariable('input_dir') || '/claims/*/*.csv');

-- every line as delivered: what every line needs typed once, the rest kept as text until
-- the H0038 lines are known
create or replace temp table delivered_lines as
select
    files.delivery_order,
    upper(string_split(line.filename, '/')[-2]) as payer,
    blank(line.claim_id) as claim_id,
    try_cast(blank(line.claim_line_number) as integer) as claim_line_number,
    coalesce(blank(line.claim_frequency_code), '1') as claim_frequency_code,
    blank(line.original_claim_id) as original_claim_id,
    blank(line.member_id) as member_id,
    upper(blank(line.hcpcs_code)) as hcpcs_code,
    as_date(line.claim_line_start_date) as service_date,
    blank(line.claim_line_end_date) as end_text,
    as_date(line.claim_line_end_date) as end_date,
    try_cast(blank(line.service_unit_quantity) as decimal(18, 4)) as service_unit_quantity,
    try_cast(blank(line.paid_amount) as decimal(18, 2)) is not null as paid_amount_readable,
    as_date(line.paid_date) as paid_date,
    line.rendering_npi, line.billing_npi, line.hcpcs_modifier_1, line.hcpcs_modifier_2,
    line.hcpcs_modifier_3, line.hcpcs_modifier_4, line.place_of_service_code, line.session_id
from read_csv(getvariable('input_dir') || '/claims/*/*.csv', all_varchar = true,
    filename = true, union_by_name = true) as line
join claim_files as files on files.source_file = line.filename;

-- what the contract quarantines: blank required values, unreadable dates and numbers, an
-- unknown frequency code, a correction that names no claim, a payer folder that is no MCO
create or replace temp view claim_lines as
select *
from delivered_lines
where claim_id is not null and member_id is not null and blank(billing_npi) is not null
    and hcpcs_code is not null and claim_line_number >= 1
    and service_unit_quantity is not null and paid_amount_readable
    and service_date is not null and paid_date is not null
    and (end_text is null or end_date is not null)
    and claim_frequency_code in ('1', '7', '8')
    and (claim_frequency_code = '1' or original_claim_id is not null)
    and payer in (select payer from mcos);

-- claim-level values come from the claim's lowest line number, in its latest copy (a line
-- delivered again replaces the earlier copy; a key is not repeated within one file)
create or replace temp table claims as
with headers as (
    select payer, claim_id,
        arg_min(
            {'frequency': claim_frequency_code, 'original': original_claim_id,
                'paid_date': paid_date, 'delivery_order': delivery_order},
            (claim_line_number, -delivery_order)
        ) as header
    from claim_lines
    group by payer, claim_id
)
select payer, claim_id, header.frequency as claim_frequency_code,
    header.original as original_claim_id, header.paid_date, header.delivery_order
from headers;

-- the current version of every chain: the newest correction (paid date, then delivery order)
-- decides; a chain without corrections is its original
create or replace temp table current_claims as
with recursive correction_ancestors as (
    select payer, claim_id, original_claim_id as ancestor_id, 1 as depth
    from claims
    where claim_frequency_code in ('7', '8')
    union all
    select walk.payer, walk.claim_id, earlier.original_claim_id, walk.depth + 1
    from correction_ancestors as walk
    join claims as earlier on earlier.payer = walk.payer and earlier.claim_id = walk.ancestor_id
    where earlier.claim_frequency_code in ('7', '8') and walk.depth < 50
),
correction_roots as (
    select payer, claim_id, arg_max(ancestor_id, depth) as root_id
    from correction_ancestors
    group by payer, claim_id
),
deciding_corrections as (
    select root.payer, root.root_id,
        arg_max(
            {'claim_id': claims.claim_id, 'frequency': claims.claim_frequency_code,
                'paid_date': claims.paid_date},
            (claims.paid_date, claims.delivery_order)
        ) as decider
    from correction_roots as root
    join claims using (payer, claim_id)
    group by root.payer, root.root_id
)
select payer, decider.claim_id as claim_id, decider.paid_date
from deciding_corrections
where decider.frequency = '7'
union all
select claims.payer, claims.claim_id, claims.paid_date
from claims
anti join deciding_corrections
    on deciding_corrections.payer = claims.payer and deciding_corrections.root_id = claims.claim_id
where claims.claim_frequency_code = '1';

-- the latest copy of each in-scope line of a current claim, with its policy and what the
-- rules read
create or replace temp table in_scope as
with latest_in_scope_copies as (
    -- a later copy replaces this one whatever its code, so it is checked against every line
    select *,
        case when list_contains(getvariable('pps_codes'), copy.hcpcs_code)
            then 'h0038_parent_peer_support' else 'chw_community_health_worker' end
            as policy_id
    from claim_lines as copy
    where (list_contains(getvariable('pps_codes'), copy.hcpcs_code)
            or list_contains(getvariable('chw_codes'), copy.hcpcs_code))
        and not exists (
            select 1
            from claim_lines as later
            where later.payer = copy.payer and later.claim_id = copy.claim_id
                and later.claim_line_number = copy.claim_line_number
                and later.delivery_order > copy.delivery_order
        )
),
current_lines as (
    select line.*, current.paid_date as claim_paid_date,
        [upper(blank(line.hcpcs_modifier_1)), upper(blank(line.hcpcs_modifier_2)),
            upper(blank(line.hcpcs_modifier_3)), upper(blank(line.hcpcs_modifier_4))]
            as modifiers
    from latest_in_scope_copies as line
    join current_claims as current using (payer, claim_id)
)
select
    row_number() over () as line_id,
    policy_id, payer, claim_id, claim_line_number, member_id,
    coalesce(blank(rendering_npi), blank(billing_npi)) as peer_npi,
    blank(billing_npi) as billing_npi,
    hcpcs_code, service_date,
    coalesce(end_date, service_date) as service_end_date,
    blank(place_of_service_code) as place_of_service_code,
    blank(session_id) as session_id,
    service_unit_quantity,
    list_contains(modifiers, getvariable('pps_group_modifier')) as is_group,
    modifiers,
    array_to_string(list_sort(list_distinct(modifiers)), ':') as modifier_set,
    claim_paid_date as paid_date
from current_lines;

create or replace temp view pps_lines as
from in_scope where policy_id = 'h0038_parent_peer_support';

create or replace temp view chw_lines as
from in_scope where policy_id = 'chw_community_health_worker';

-- the peer provider's birth date, one per NPI: where rows disagree, the last non-blank one in
-- the file (docs/decisions.md, "Reference data with several rows")
create or replace temp table peer_birth_dates as
select npi, arg_max(date_of_birth, file_row) filter (where date_of_birth is not null)
    as date_of_birth
from providers
group by npi;

create or replace temp table findings as
with pps001 as (
    select line_id, 'PPS001' as rule_id, 'violation' as severity
    from pps_lines
    where service_date < getvariable('pps_effective_date')
),
group_session_sizes as (
    -- a blank place of service or session_id is one value; sessions span MCOs
    select peer_npi, service_date, place_of_service_code, session_id,
        count(distinct member_id) as billed_members
    from pps_lines
    where is_group
    group by all
),
pps002 as (
    select line.line_id, 'PPS002', 'violation'
    from pps_lines as line
    join group_session_sizes as session
        on session.peer_npi = line.peer_npi
        and session.service_date = line.service_date
        and session.place_of_service_code is not distinct from line.place_of_service_code
        and session.session_id is not distinct from line.session_id
    where line.is_group and session.billed_members > getvariable('pps_group_size_max')
),
pps003 as (
    -- a stay covers its start up to, not including, its end; a same-day stay its one day
    select distinct line.line_id, 'PPS003', 'violation'
    from pps_lines as line
    join level_of_care as stay using (member_id)
    where stay.loc_category in ('ACUTE', 'RESIDENTIAL')
        and (stay.start_date is null or stay.start_date <= line.service_end_date)
        and (
            stay.end_date is null
            or (case when stay.end_date = stay.start_date then stay.end_date
                else stay.end_date - 1 end) >= line.service_date
        )
),
lines_with_lived_experience as (
    select distinct line.line_id
    from pps_lines as line
    join providers as provider on provider.npi = line.peer_npi
    where provider.lived_experience_attested
        and (provider.lived_experience_attested_date is null
            or provider.lived_experience_attested_date <= line.service_date)
),
pps004 as (
    select line_id, 'PPS004', 'violation'
    from pps_lines
    anti join lines_with_lived_experience using (line_id)
),
lines_with_pps_in_array as (
    select distinct line.line_id
    from pps_lines as line
    join providers as provider on provider.npi = line.peer_npi
    where covers(provider.enrollment_start_date, provider.enrollment_end_date, line.service_date)
        and provider.pps_start_date <= line.service_date
),
pps005 as (
    select line_id, 'PPS005', 'violation'
    from pps_lines
    anti join lines_with_pps_in_array using (line_id)
),
caregiver_birth_dates as (
    -- a caregiver ID is one person across the file (listed once per child): one birth date,
    -- where rows disagree the last non-blank one in the file (docs/decisions.md)
    select caregiver_id,
        arg_max(date_of_birth, file_row) filter (where date_of_birth is not null)
            as date_of_birth
    from caregivers
    group by all
),
named_parents as (
    select distinct line.line_id, participant.caregiver_id, listed.date_of_birth
    from pps_lines as line
    join service_participants as participant using (payer, claim_id, claim_line_number)
    left join caregiver_birth_dates as listed on listed.caregiver_id = participant.caregiver_id
    where participant.caregiver_id is not null
),
active_parents as (
    -- only for lines whose record review names nobody
    select distinct line.line_id, caregiver.caregiver_id, listed.date_of_birth
    from pps_lines as line
    join caregivers as caregiver using (member_id)
    join caregiver_birth_dates as listed using (caregiver_id)
    where covers(caregiver.start_date, caregiver.end_date, line.service_date)
        and line.line_id not in (select line_id from named_parents)
),
candidate_parents as (
    select line_id, date_of_birth from named_parents
    union all
    select line_id, date_of_birth from active_parents
),
age_gap as (
    select line.line_id, peer.date_of_birth as peer_date_of_birth,
        count(candidate.line_id) as candidates,
        count(candidate.line_id) filter (where candidate.date_of_birth is null) as undated,
        coalesce(bool_or(years_apart(candidate.date_of_birth, peer.date_of_birth,
            getvariable('pps_age_gap_years'))), false) as any_apart
    from pps_lines as line
    left join peer_birth_dates as peer on peer.npi = line.peer_npi
    left join candidate_parents as candidate using (line_id)
    group by line.line_id, peer.date_of_birth
),
pps006 as (
    select line_id, 'PPS006',
        case when peer_date_of_birth is not null and candidates > 0 and undated = 0
            then 'violation' else 'documentation' end
    from age_gap
    where not any_apart
),
eligible_lines as (
    select distinct line.line_id
    from pps_lines as line
    join enrollment as span using (member_id)
    where covers(span.start_date, span.end_date, line.service_date)
),
pps007 as (
    -- a caregiver's Medicaid ID is not on the member file, so it falls here too
    select line_id, 'PPS007', 'violation'
    from pps_lines
    where member_id not in (select member_id from members)
        or line_id not in (select line_id from eligible_lines)
),
planned_lines as (
    select distinct line.line_id
    from pps_lines as line
    join treatment_plans as plan using (member_id)
    where covers(plan.start_date, plan.end_date, line.service_date)
        and plan.includes_pps
        and plan.signed_date <= line.service_date
        and list_contains(getvariable('pps_licensed_practitioner_types'), plan.practitioner_license_type)
),
pps008 as (
    select line_id, 'PPS008', 'violation'
    from pps_lines
    anti join planned_lines using (line_id)
),
consented_lines as (
    select distinct line.line_id
    from pps_lines as line
    join consents as consent using (member_id)
    where consent.consent_type = getvariable('pps_consent_type')
        and consent.signed_date <= line.service_date
        and (consent.revoked_date is null or consent.revoked_date > line.service_date)
),
pps009 as (
    select line.line_id, 'PPS009', 'violation'
    from pps_lines as line
    join members as member using (member_id)
    where year(line.service_date) - year(member.date_of_birth)
            - (month_day(line.service_date) < month_day(member.date_of_birth))::integer
            >= getvariable('pps_adult_age')
        and line.line_id not in (select line_id from consented_lines)
),
pps010 as (
    select distinct line.line_id, 'PPS010', 'documentation'
    from pps_lines as line
    join service_participants as participant using (payer, claim_id, claim_line_number)
    where participant.non_medicaid_participant and not participant.direct_benefit_documented
),
chw001 as (
    select line_id, 'CHW001' as rule_id, 'violation' as severity
    from chw_lines
    where service_date < getvariable('chw_effective_date')
),
chw002 as (
    select line_id, 'CHW002', 'violation'
    from chw_lines
    where not coalesce(list_contains(modifiers, getvariable('chw_required_modifier')), false)
),
chw_running_units as (
    -- the member's units of the DOS and of its calendar month, counted in payment order
    -- across claims, providers and MCOs, up to and including this line
    select line_id, service_unit_quantity as units,
        sum(service_unit_quantity) over (
            partition by member_id, service_date
            order by paid_date, payer, claim_id, claim_line_number
            rows between unbounded preceding and current row
        ) as units_that_day,
        sum(service_unit_quantity) over (
            partition by member_id, year(service_date), month(service_date)
            order by paid_date, payer, claim_id, claim_line_number
            rows between unbounded preceding and current row
        ) as units_that_month
    from chw_lines
),
chw003 as (
    -- a line that adds no units cannot be the one that went over
    select line_id, 'CHW003', 'violation'
    from chw_running_units
    where units > 0 and units_that_day > getvariable('chw_daily_unit_limit')
),
chw004 as (
    select line_id, 'CHW004', 'violation'
    from chw_running_units
    where units > 0 and units_that_month > getvariable('chw_monthly_unit_limit')
),
chw005 as (
    -- the billing provider, on any provider row whose enrollment covers the DOS
    select distinct line.line_id, 'CHW005', 'violation'
    from chw_lines as line
    join providers as provider on provider.npi = line.billing_npi
    where list_contains(getvariable('chw_excluded_provider_types'), provider.provider_type)
        and covers(provider.enrollment_start_date, provider.enrollment_end_date,
            line.service_date)
),
chw006 as (
    select line_id, 'CHW006', 'documentation'
    from chw_lines
    where coalesce(list_contains(getvariable('chw_telehealth_places_of_service'),
                place_of_service_code), false)
        or list_has_any(modifiers, getvariable('chw_telehealth_modifiers'))
),
service_copies as (
    -- the earliest-paid claim keeps its copy (ties: the smallest claim_id); each policy's
    -- lines apart
    select line_id, payer, claim_id,
        first_value(payer) over same_service as kept_payer,
        first_value(claim_id) over same_service as kept_claim_id
    from in_scope
    window same_service as (
        partition by policy_id, member_id, peer_npi, service_date, hcpcs_code, modifier_set,
            service_unit_quantity
        order by paid_date, claim_id, payer
    )
),
gen001 as (
    select line_id, 'GEN001', 'violation'
    from service_copies
    where payer <> kept_payer or claim_id <> kept_claim_id
),
mco_on_dos as (
    select line.line_id, bool_or(span.payer = line.payer) as with_paying_mco
    from in_scope as line
    join enrollment as span using (member_id)
    where covers(span.start_date, span.end_date, line.service_date)
    group by line.line_id
),
gen002 as (
    select line_id, 'GEN002', 'violation'
    from mco_on_dos
    where not with_paying_mco
),
flagged as (
    select * from pps001
    union all select * from pps002
    union all select * from pps003
    union all select * from pps004
    union all select * from pps005
    union all select * from pps006
    union all select * from pps007
    union all select * from pps008
    union all select * from pps009
    union all select * from pps010
    union all select * from chw001
    union all select * from chw002
    union all select * from chw003
    union all select * from chw004
    union all select * from chw005
    union all select * from chw006
    union all select * from gen001
    union all select * from gen002
)
select line.policy_id, line.payer, line.claim_id, line.claim_line_number, flagged.rule_id,
    flagged.severity
from flagged
join in_scope as line using (line_id);
