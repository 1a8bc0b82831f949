-- migration 0004: what each reference snapshot says, key by key, about the keys through which
-- its rows reach claim lines (pipelines/claims/scope.py, REFERENCE_KEYS). A nightly run
-- compares the snapshot in use at a pack's last audit with the one in use now and audits
-- again only the lines their changed keys reach (docs/decisions.md, "A new reference snapshot
-- re-audits only the lines its changed rows reach"). Only the snapshots in use now or at some
-- pack's last audit are kept.

-- the snapshots whose keys are recorded: an empty snapshot is one with no keys
create table if not exists audit.keyed_snapshots (
    delivery_id integer primary key,  -- the snapshot's delivery (audit.deliveries)
    dataset varchar not null
);

create table if not exists audit.reference_keys (
    delivery_id integer not null,
    key_column varchar not null,  -- the file's column the key is read from
    key_value varchar not null,
    qualifier varchar,            -- the column read with it: a claim's payer, a row's policy
    rows_digest ubigint not null  -- every column of the key's rows, in file order
);
