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

localised as (

    select
        events.event_id,
        events.user_id,
        coalesce(users.timezone, 'UTC') as timezone,
        events.played_at,
        {{ to_local_timestamp('events.played_at', "coalesce(users.timezone, 'UTC')") }} as played_at_local,
        {{ epoch_seconds('events.played_at') }} as started_epoch_seconds,
        events.ms_played,
        events.ms_played / 1000.0 as play_seconds,
        events.track_id,
        coalesce(events.artist_id, 'unknown-artist:' || events.track_id) as artist_id,
        events.track_duration_ms,
        coalesce(events.skipped, false) as is_skipped,
        coalesce(events.platform, 'unknown') as platform,
        coalesce(events.country, 'unknown') as country
    from events
    left join users
        on events.user_id = users.user_id

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
