{{
    config(
        unique_key='listen_date',
        partition_by=('listen_date' if target.type == 'spark' else none),
    )
}}

{#
  Plays per user, local day and local hour: the user's daily rhythm, kept small so baselines
  can look back over the trailing window without rereading events.
  Grain: one row per user, listen_date and local_hour with at least one play.
#}

with

window_events as (

    {{ recomputed_plays(['user_id', 'listen_date', 'local_hour']) }}

),

final as (

    select
        user_id,
        listen_date,
        local_hour,
        count(*) as play_count
    from window_events
    group by user_id, listen_date, local_hour

)

select * from final
