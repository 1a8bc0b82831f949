-- reference values that disagree: in the snapshots in use, the keys with two or more
-- different non-blank values of a column the audit reads one value of
-- (docs/decisions.md, "Reference data with several rows"). Counts only, never the keys.
with conflicting_key as (
    select delivery_id, 'member_id' as key_column, 'date_of_birth' as value_column,
        'the last in the file' as value_used
    from ref.members
    group by delivery_id, member_id
    having count(distinct date_of_birth) > 1
    union all
    select delivery_id, 'npi', 'date_of_birth', 'the last in the file'
    from ref.providers
    group by delivery_id, npi
    having count(distinct date_of_birth) > 1
    union all
    select delivery_id, 'caregiver_id', 'date_of_birth', 'the last in the file'
    from ref.caregivers
    group by delivery_id, caregiver_id
    having count(distinct date_of_birth) > 1
    union all
    select delivery_id, 'payer', 'implemented_date', 'the earliest'
    from ref.mco_implementation
    group by delivery_id, payer
    having count(distinct implemented_date) > 1
    union all
    select delivery_id, 'payer', 'reprocessing_completed_date', 'the latest'
    from ref.mco_implementation
    group by delivery_id, payer
    having count(distinct reprocessing_completed_date) > 1
)
select
    delivery.source_file,
    conflict.key_column,
    conflict.value_column,
    count(*) as keys,
    conflict.value_used
from conflicting_key as conflict
join audit.deliveries as delivery using (delivery_id)
group by all
order by all
