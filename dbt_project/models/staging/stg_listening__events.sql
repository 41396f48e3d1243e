{#
  Typed plays in local time. The single user of the raw sources.
  Grain: one row per event_id.

  The local day is the user's: the date on the wall clock of the user's own time zone, so a
  day's plays stay together wherever they came from. The local hour is the clock of where the
  play happened: the user's zone, except for a play from a country other than the user's home
  country (the country of the user's zone), which is read on that country's main clock. A
  traveller's afternoon abroad is an afternoon, not a night at home. A user whose zone has no
  country (UTC) or a play without a known country keeps the user's zone.
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

clocked as (

    select
        events.*,
        coalesce(users.timezone, 'UTC') as timezone,
        case
            when home.country_code is not null
                and country_main_zones.time_zone is not null
                and events.country <> home.country_code
                then country_main_zones.time_zone
            else coalesce(users.timezone, 'UTC')
        end as clock_time_zone
    from events
    left join users
        on events.user_id = users.user_id
    left join time_zone_countries as home
        on users.timezone = home.time_zone
    left join country_main_zones
        on events.country = country_main_zones.country_code

),

localised as (

    select
        events.event_id,
        events.user_id,
        events.timezone,
        events.played_at,
        {{ to_local_timestamp('events.played_at', 'events.timezone') }} as played_at_local,
        case
            when events.clock_time_zone <> events.timezone
                then {{ to_local_timestamp('events.played_at', 'events.clock_time_zone') }}
        end as played_at_abroad,
        {{ epoch_seconds('events.played_at') }} as started_epoch_seconds,
        events.ms_played,
        events.ms_played / 1000.0 as play_seconds,
        events.track_id,
        coalesce(events.artist_id, 'unknown-artist:' || events.track_id) as artist_id,
        events.track_duration_ms,
        coalesce(events.skipped, false) as is_skipped,
        coalesce(events.platform, 'unknown') as platform,
        coalesce(events.country, 'unknown') as country
    from clocked as events

),

final as (

    select
        *,
        cast(played_at_local as date) as listen_date,
        cast(extract(hour from coalesce(played_at_abroad, played_at_local)) as integer) as local_hour,
        started_epoch_seconds + play_seconds as ended_epoch_seconds
    from localised

)

select * from final
