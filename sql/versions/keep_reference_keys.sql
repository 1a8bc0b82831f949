-- keep the recorded keys of the reference snapshots a nightly run can still compare: those in
-- use now and those in use at each policy's last audit (its run's last delivery). Any other
-- snapshot was replaced before any audit still to come builds on it.

create or replace temp table kept_snapshot as
with snapshot as (
    select dataset, delivery_id
    from audit.deliveries
    where kind = 'reference' and status = 'loaded'
),
last_audit as (
    select policy_id, arg_max(last_delivery_id, run_id) as last_delivery_id
    from audit.runs
    group by policy_id
),
in_use_at_last_audit as (
    select max(snapshot.delivery_id) as delivery_id
    from snapshot
    join last_audit on snapshot.delivery_id <= last_audit.last_delivery_id
    group by last_audit.policy_id, snapshot.dataset
),
in_use_now as (
    select max(delivery_id) as delivery_id
    from snapshot
    group by dataset
)
select delivery_id from in_use_at_last_audit
union
select delivery_id from in_use_now;

delete from audit.reference_keys
where delivery_id not in (select delivery_id from kept_snapshot);

delete from audit.keyed_snapshots
where delivery_id not in (select delivery_id from kept_snapshot);
