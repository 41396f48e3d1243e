{#
  Typed plays in local time. The single user of the raw sources.
  Grain: one row per event_id.

  The local day is the user's: the date on the wall clock of the user's own time zone, so a
  day's plays stay together wherever they came from. The local hour is the clock of where the
  play happened: the user's zone, except for a play from a country other than the user's home
  country (the country of the user's zone), which is read on that country's main clock. A
  traveller's afternoon abroad is an afternoon, not a night at home. A user whose zone has no
  country (UTC) or a play without a known country (none given, or ZZ) keeps the user's zone.
#}

with

events as (

    select * from {{ source('raw', 'listening_events') }}

),

users as (

    select * from {{ source('raw', 'users') }}

),

time_zone_countries as (

    select * from {{ ref('time_zone_countries') }}

),

country_main_zones as (

    select country_code, time_zone
    from time_zone_countries
    where is_main_zone_of_country

),

zoned as (

    select
        events.*,
        coalesce(users.timezone, 'UTC') as timezone,
        case
            when home.country_code is not null
                and country_main_zones.time_zone is not null
                and events.country <> home.country_code
                then country_main_zones.time_zone
            else coalesce(users.timezone, 'UTC')
        end as clock_time_zone,
        {{ epoch_seconds('events.played_at') }} as started_epoch_seconds
    from events
    left join users
        on events.user_id = users.user_id
    left join time_zone_countries as home
        on users.timezone = home.time_zone
    left join country_main_zones
        on events.country = country_main_zones.country_code

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
        -- Plays abroad are few: each is read on its country's clock one by one.
        case
            when zoned.clock_time_zone <> zoned.timezone
                then {{ to_local_timestamp('zoned.played_at', 'zoned.clock_time_zone') }}
        end as played_at_abroad,
        zoned.started_epoch_seconds,
        zoned.ms_played,
        zoned.ms_played / 1000 as play_seconds,
        zoned.track_id,
        coalesce(zoned.artist_id, 'unknown-artist:' || zoned.track_id) as artist_id,
        zoned.track_duration_ms,
        zoned.skipped as is_skipped,
        coalesce(zoned.platform, {{ unknown_context() }}) as platform,
        case
            when upper(zoned.country) = 'ZZ' then {{ unknown_context() }}
            else coalesce(zoned.country, {{ unknown_context() }})
        end as country
    from zoned
    left join zone_hour_offsets
        on zoned.timezone = zone_hour_offsets.timezone
        and cast(floor(zoned.started_epoch_seconds / 3600) as bigint) = zone_hour_offsets.utc_hour_number

),

final as (

    select
        *,
        cast(played_at_local as date) as listen_date,
        cast(extract(hour from coalesce(played_at_abroad, played_at_local)) as integer) as local_hour,
        started_epoch_seconds + play_seconds as ended_epoch_seconds,
        -- The same for every play: a local day ending after it is not over yet in the data (the
        -- last day of an export, or of a daily run for the users west of UTC).
        {{ dbt.dateadd('hour', '(window_span.last_hour_number + 1)', "cast('1970-01-01' as timestamp)") }} as plays_known_until
    from localised
    cross join window_span

)

select * from final
