-- record the keys of the snapshot in use of one reference file ($dataset_table, loaded as
-- delivery $delivery_id) read from its column $key_column (with $qualifier when $qualified):
-- per key, a digest of every column of the key's rows in file order. Two snapshots give a key
-- the same digest only when its rows are the same, in the same order (where one value is
-- needed the last row of the file wins, so a row moved within its key is a change).

insert into audit.reference_keys
with snapshot_row as (
    select
        columns($key_column)::varchar as key_value,
        case when $qualified then columns($qualifier)::varchar end as qualifier,
        source_row,
        hash(*columns(* exclude (delivery_id, source_row))) as row_digest
    from query_table($dataset_table)
)
select
    $delivery_id,
    $key_column,
    key_value,
    qualifier,
    hash(list(row_digest order by source_row))
from snapshot_row
where key_value is not null
group by key_value, qualifier;
