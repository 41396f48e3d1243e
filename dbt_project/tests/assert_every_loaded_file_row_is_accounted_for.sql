-- A failing row is a load whose rows read are not exactly the rows loaded, quarantined and
-- counted as duplicates, or whose quarantine holds a different number of event rows than it says.

with

audits as (

    select * from {{ source('raw', 'load_audit') }}

),

quarantined as (

    select load_id, count(*) as quarantined_event_rows
    from {{ source('raw', 'quarantined_events') }}
    where row_kind = 'event'
    group by load_id

),

final as (

    select
        audits.load_id,
        audits.rows_read,
        audits.rows_loaded,
        audits.rows_quarantined,
        audits.rows_duplicate,
        coalesce(quarantined.quarantined_event_rows, 0) as quarantined_event_rows
    from audits
    left join quarantined
        on audits.load_id = quarantined.load_id
    where audits.rows_read <> audits.rows_loaded + audits.rows_quarantined + audits.rows_duplicate
        or audits.rows_quarantined <> coalesce(quarantined.quarantined_event_rows, 0)

)

select * from final
