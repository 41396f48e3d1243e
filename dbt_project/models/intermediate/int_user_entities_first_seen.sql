{{
    config(
        unique_key=['user_id', 'entity_type', 'entity_id'],
        partition_by=('entity_type' if target.type == 'spark' else none),
    )
}}

{#
  The first local day each user played each track, artist, country and platform (a country or
  platform the source did not name is none: unknown_context).
  Grain: one row per user, entity type and entity.

  "New to the user" then means first_listen_date = the day, with no look-ahead. A run only
  writes entities whose first day falls in its window and is earlier than what is stored, so
  re-running a window changes nothing and a late backfill moves a first day earlier.
#}

with

window_events as (

    {{ recomputed_plays(['user_id', 'listen_date', 'track_id', 'artist_id', 'country', 'platform']) }}

),

-- Grouped per entity type, then stacked: four groupings of the plays cost less than one
-- grouping of four times as many rows (10,000 users x 90 days: 4.7 s against 6.4 s).
first_seen_in_window as (

    select user_id, 'track' as entity_type, track_id as entity_id, min(listen_date) as first_listen_date
    from window_events
    group by user_id, track_id
    union all
    select user_id, 'artist' as entity_type, artist_id as entity_id, min(listen_date) as first_listen_date
    from window_events
    group by user_id, artist_id
    union all
    select user_id, 'country' as entity_type, country as entity_id, min(listen_date) as first_listen_date
    from window_events
    where country <> {{ unknown_context() }}
    group by user_id, country
    union all
    select user_id, 'platform' as entity_type, platform as entity_id, min(listen_date) as first_listen_date
    from window_events
    where platform <> {{ unknown_context() }}
    group by user_id, platform

),

{% if is_incremental() and config.get('incremental_strategy') == 'insert_overwrite' %}
-- A strategy that overwrites whole partitions (entity_type, on an engine without row-level
-- deletes, such as Spark's Parquet tables) replaces every stored row of the types it writes, so
-- the stored rows go with the new ones and each entity keeps its earliest day.
final as (

    select user_id, entity_type, entity_id, min(first_listen_date) as first_listen_date
    from (
        select user_id, entity_type, entity_id, first_listen_date from first_seen_in_window
        union all
        select user_id, entity_type, entity_id, first_listen_date from {{ this }}
    ) as stored_and_new
    group by user_id, entity_type, entity_id

)
{% else %}
final as (

    select first_seen_in_window.*
    from first_seen_in_window
    {% if is_incremental() %}
    left join {{ this }} as stored
        on first_seen_in_window.user_id = stored.user_id
        and first_seen_in_window.entity_type = stored.entity_type
        and first_seen_in_window.entity_id = stored.entity_id
    where stored.first_listen_date is null
        or stored.first_listen_date > first_seen_in_window.first_listen_date
    {% endif %}

)
{% endif %}

select * from final
