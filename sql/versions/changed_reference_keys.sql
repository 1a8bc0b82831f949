-- the keys whose rows differ between the snapshot of a reference file in use at the pack's
-- last audit and the one in use now (registered compared_snapshot: dataset, snapshot_then,
-- snapshot_now; snapshot_then null when the file had none): rows added, removed, changed in
-- any column or moved within their key. Each with the lines it reaches (registered
-- reference_key_reach: dataset, key_column, reaches; scope.REFERENCE_KEYS).

create or replace temp table changed_reference_key as
with key_then as (
    select compared.dataset, recorded.key_column, recorded.key_value, recorded.qualifier,
        recorded.rows_digest
    from audit.reference_keys as recorded
    join compared_snapshot as compared on recorded.delivery_id = compared.snapshot_then
),
key_now as (
    select compared.dataset, recorded.key_column, recorded.key_value, recorded.qualifier,
        recorded.rows_digest
    from audit.reference_keys as recorded
    join compared_snapshot as compared on recorded.delivery_id = compared.snapshot_now
),
changed_key as (
    select
        coalesce(key_then.dataset, key_now.dataset) as dataset,
        coalesce(key_then.key_column, key_now.key_column) as key_column,
        coalesce(key_then.key_value, key_now.key_value) as key_value,
        coalesce(key_then.qualifier, key_now.qualifier) as qualifier
    from key_then
    full join key_now
        on key_then.dataset = key_now.dataset
        and key_then.key_column = key_now.key_column
        and key_then.key_value = key_now.key_value
        and key_then.qualifier is not distinct from key_now.qualifier
    where key_then.rows_digest is distinct from key_now.rows_digest
)
select distinct reach.reaches, changed_key.key_value, changed_key.qualifier
from changed_key
join reference_key_reach as reach using (dataset, key_column);
