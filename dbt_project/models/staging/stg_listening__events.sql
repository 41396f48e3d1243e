{#
  Typed plays in the user's local time. The single user of the raw sources.
  Grain: one row per event_id.
#}

with

events as (

    select * from {{ source('raw', 'listening_events') }}

),

users as (

    select * from {{ source('raw', 'users') }}

),

zoned as (

    select
        events.*,
        coalesce(users.timezone, 'UTC') as timezone,
        {{ epoch_seconds('events.played_at') }} as started_epoch_seconds
    from events
    left join users
        on events.user_id = users.user_id

),

-- Localising each play through the engine's time-zone rules cost 2.5 s per 32 M plays, paid
-- again by every model and test that reads this view. A zone's UTC offset changes only at whole
-- UTC hours in practically every zone (Asia/Kolkata's +05:30 included), so the offset of each
-- zone and UTC hour of the run's window is computed once (zones x hours: a few thousand rows)
-- and joined (0.7 s per 32 M plays). An hour whose offset changes within it (Australia/Lord_Howe's
-- half-hour daylight saving, historic local mean times) has no offset here, nor do plays outside
-- the window: those are localised one by one, as before.
window_span as (

    select
        cast(floor(min({{ epoch_seconds('played_at') }}) / 3600) as bigint) as first_hour_number,
        cast(floor(max({{ epoch_seconds('played_at') }}) / 3600) as bigint) as last_hour_number
    from {{ source('raw', 'listening_events') }}
    where played_at >= {{ event_read_start() }}
        and played_at < {{ event_read_end() }}

),

hour_numbers as (

    select {{ integer_series('first_hour_number', 'last_hour_number') }} as utc_hour_number
    from window_span

),

zone_hours as (

    select
        zones.timezone,
        hour_numbers.utc_hour_number,
        {{ dbt.dateadd('hour', 'hour_numbers.utc_hour_number', "cast('1970-01-01' as timestamp)") }} as hour_started_at
    from (select distinct coalesce(timezone, 'UTC') as timezone from users) as zones
    cross join hour_numbers

),

zone_hour_offsets as (

    select
        timezone,
        utc_hour_number,
        cast(
            {{ epoch_seconds(to_local_timestamp('hour_started_at', 'timezone')) }} - {{ epoch_seconds('hour_started_at') }}
            as bigint
        ) as offset_seconds,
        cast(
            {{ epoch_seconds(to_local_timestamp(dbt.dateadd('second', 3599, 'hour_started_at'), 'timezone')) }}
            - {{ epoch_seconds(dbt.dateadd('second', 3599, 'hour_started_at')) }}
            as bigint
        ) as offset_seconds_at_hour_end
    from zone_hours

),

localised as (

    select
        zoned.event_id,
        zoned.user_id,
        zoned.timezone,
        zoned.played_at,
        case
            when zone_hour_offsets.offset_seconds = zone_hour_offsets.offset_seconds_at_hour_end
                then {{ dbt.dateadd('second', 'zone_hour_offsets.offset_seconds', 'zoned.played_at') }}
            else {{ to_local_timestamp('zoned.played_at', 'zoned.timezone') }}
        end as played_at_local,
        zoned.started_epoch_seconds,
        zoned.ms_played,
        zoned.ms_played / 1000.0 as play_seconds,
        zoned.track_id,
        coalesce(zoned.artist_id, 'unknown-artist:' || zoned.track_id) as artist_id,
        zoned.track_duration_ms,
        coalesce(zoned.skipped, false) as is_skipped,
        coalesce(zoned.platform, 'unknown') as platform,
        coalesce(zoned.country, 'unknown') as country
    from zoned
    left join zone_hour_offsets
        on zoned.timezone = zone_hour_offsets.timezone
        and cast(floor(zoned.started_epoch_seconds / 3600) as bigint) = zone_hour_offsets.utc_hour_number

),

final as (

    select
        *,
        cast(played_at_local as date) as listen_date,
        cast(extract(hour from played_at_local) as integer) as local_hour,
        started_epoch_seconds + play_seconds as ended_epoch_seconds
    from localised

)

select * from final
