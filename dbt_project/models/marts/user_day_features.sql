{{
    config(
        unique_key='listen_date',
        partition_by=('listen_date' if target.type == 'spark' else none),
    )
}}

{#
  What each user did on each local day. Grain: one row per user_id and listen_date with at
  least one play.
#}

with

-- The plays are read once per use, each read with only the columns that use needs: one shared
-- read is materialised whole by DuckDB, and at 16 M plays spilling it cost more than reading
-- (and localising) the plays again.
window_events as (

    {{ recomputed_plays([
        'user_id', 'listen_date', 'timezone', 'local_hour', 'ms_played', 'play_seconds', 'is_skipped',
        'played_at_abroad', 'plays_known_until',
    ]) }}

),

-- A play of a track whose length is unknown (Spotify's exports give none) may have been stopped.
play_times as (

    {{ recomputed_plays([
        'user_id', 'listen_date', 'started_epoch_seconds', 'ended_epoch_seconds', 'track_id',
        'coalesce(play_seconds < track_duration_ms / 1000 - 1, true) as may_be_cut_short',
    ]) }}

),

context_events as (

    {{ recomputed_plays(['user_id', 'listen_date', 'country', 'platform', 'artist_id']) }}

),

track_events as (

    {{ recomputed_plays(['user_id', 'listen_date', 'track_id', 'play_seconds']) }}

),

length_events as (

    {{ recomputed_plays(['user_id', 'listen_date', 'play_seconds']) }}

),

-- From new_context_days - 1 days before the window (at least the day before): a country and a
-- platform first played then are still new in it, and a country first played the day before is a
-- day old. So from recent_platform_days - 1 days before, for a platform that is recent in it.
-- Every other use matches a day of the window.
first_seen as (

    select * from {{ ref('int_user_entities_first_seen') }}
    where first_listen_date >= {{ listen_window_start() }} - {{ [var('new_context_days') - 1, var('recent_platform_days') - 1, 1] | max }}
        and first_listen_date < {{ listen_window_end() }}

),

-- Each country and platform a user first played on the same day, paired, while they are still new
-- (var new_context_days): a day's play from both is a device and a place that appeared together.
new_context_pairs as (

    select
        countries.user_id,
        countries.entity_id as country,
        platforms.entity_id as platform,
        countries.first_listen_date
    from first_seen as countries
    inner join first_seen as platforms
        on countries.user_id = platforms.user_id
        and countries.first_listen_date = platforms.first_listen_date
    where countries.entity_type = 'country'
        and platforms.entity_type = 'platform'

),

-- The day's plays per country, platform and artist: its countries, platforms and artists are
-- counted from these, and the pairs that are still new matched to them. Grouped once here, the
-- day's aggregate needs no distinct counts of them.
day_contexts as (

    select user_id, listen_date, country, platform, artist_id, count(*) as play_count
    from context_events
    group by user_id, listen_date, country, platform, artist_id

),

-- With the countries first played the day before, played again: hopping between countries goes on
-- the next day among the same ones, where a traveller stays in one.
context_counts as (

    select
        day_contexts.user_id,
        day_contexts.listen_date,
        count(distinct nullif(day_contexts.country, {{ unknown_context() }})) as country_count,
        count(distinct nullif(day_contexts.platform, {{ unknown_context() }})) as platform_count,
        count(distinct day_old_countries.entity_id) as day_old_country_count
    from day_contexts
    left join first_seen as day_old_countries
        on day_contexts.user_id = day_old_countries.user_id
        and day_old_countries.entity_type = 'country'
        and day_contexts.country = day_old_countries.entity_id
        and day_old_countries.first_listen_date = cast({{ dbt.dateadd('day', -1, 'day_contexts.listen_date') }} as date)
    group by day_contexts.user_id, day_contexts.listen_date

),

-- Whose music the new pairs play: the share of their plays by artists the user first played once
-- the pair had appeared (an unnamed artist is its track's, staging). An intruder brings someone else's taste; the
-- owner on a new device somewhere new (a car across a border, a new phone abroad) plays their own.
new_context_ages as (

    select
        day_contexts.user_id,
        day_contexts.listen_date,
        min({{ dbt.datediff('new_context_pairs.first_listen_date', 'day_contexts.listen_date', 'day') }}) as new_context_age_days,
        sum(case when artists.entity_id is not null then day_contexts.play_count else 0 end)
            / sum(day_contexts.play_count) as new_context_new_artist_share
    from day_contexts
    inner join new_context_pairs
        on day_contexts.user_id = new_context_pairs.user_id
        and day_contexts.country = new_context_pairs.country
        and day_contexts.platform = new_context_pairs.platform
        and new_context_pairs.first_listen_date <= day_contexts.listen_date
        and new_context_pairs.first_listen_date > {{ dbt.dateadd('day', -(var('new_context_days') | int), 'day_contexts.listen_date') }}
    left join first_seen as artists
        on day_contexts.user_id = artists.user_id
        and artists.entity_type = 'artist'
        and day_contexts.artist_id = artists.entity_id
        and artists.first_listen_date >= new_context_pairs.first_listen_date
    group by day_contexts.user_id, day_contexts.listen_date

),

-- The day each account first played a named platform: its first day, as far as its devices tell.
account_first_days as (

    select user_id, min(first_listen_date) as first_listen_date
    from {{ ref('int_user_entities_first_seen') }}
    where entity_type = 'platform'
    group by user_id

),

-- Whose music the platforms first played that day or in the days before play (var
-- recent_platform_days): their plays by artists the user first played once the platform had
-- appeared. A second listener brings a device and a taste of their own, day after day, where the
-- owner's new phone plays the owner's music. Only a platform that appeared once the account had
-- played for var min_baseline_days: an account's first devices are all new. Per day, the recent
-- platform playing the most such music.
recent_platforms as (

    select
        day_contexts.user_id,
        day_contexts.listen_date,
        day_contexts.platform,
        {{ dbt.datediff('platforms.first_listen_date', 'day_contexts.listen_date', 'day') }} as age_days,
        sum(day_contexts.play_count) as play_count,
        sum(case when artists.entity_id is not null then day_contexts.play_count else 0 end) as new_artist_play_count
    from day_contexts
    inner join first_seen as platforms
        on day_contexts.user_id = platforms.user_id
        and platforms.entity_type = 'platform'
        and day_contexts.platform = platforms.entity_id
        and platforms.first_listen_date <= day_contexts.listen_date
        and platforms.first_listen_date > {{ dbt.dateadd('day', -(var('recent_platform_days') | int), 'day_contexts.listen_date') }}
    inner join account_first_days
        on day_contexts.user_id = account_first_days.user_id
        and platforms.first_listen_date >= {{ dbt.dateadd('day', var('min_baseline_days') | int, 'account_first_days.first_listen_date') }}
    left join first_seen as artists
        on day_contexts.user_id = artists.user_id
        and artists.entity_type = 'artist'
        and day_contexts.artist_id = artists.entity_id
        and artists.first_listen_date >= platforms.first_listen_date
    group by day_contexts.user_id, day_contexts.listen_date, day_contexts.platform, platforms.first_listen_date

),

recent_platform_music as (

    select
        user_id,
        listen_date,
        age_days as recent_platform_age_days,
        play_count as recent_platform_play_count,
        new_artist_play_count as recent_platform_new_artist_play_count
    from (
        select
            *,
            row_number() over (
                partition by user_id, listen_date order by new_artist_play_count desc, platform
            ) as rank_by_new_artist_plays
        from recent_platforms
    ) as ranked
    where rank_by_new_artist_plays = 1

),

-- The rhythm of a day (gaps, overlaps, sessions) needs the plays in order. Sorting only the
-- start and end of each play, not whole rows, is what keeps this affordable: carrying every
-- column through three window sorts made this model 76x slower for 30x the plays. Plays that
-- start at the same second are ordered longest first, so the shorter one overlaps the longer
-- whichever row the engine reads first (without the tie-break, re-runs disagreed on overlaps).
sequenced as (

    select
        *,
        started_epoch_seconds - lag(started_epoch_seconds) over in_order as seconds_since_previous_start,
        lag(started_epoch_seconds) over in_order - lag(started_epoch_seconds, 2) over in_order
            as previous_interval_seconds,
        lag(ended_epoch_seconds - started_epoch_seconds) over in_order
            - lag(ended_epoch_seconds - started_epoch_seconds, 2) over in_order as previous_length_change_seconds,
        coalesce(
            lag(may_be_cut_short) over in_order
                and lag(may_be_cut_short, 2) over in_order
                and lag(track_id) over in_order <> lag(track_id, 2) over in_order,
            false
        ) as previous_plays_may_be_cut_short,
        case
            when track_id = lag(track_id) over in_order then ended_epoch_seconds - started_epoch_seconds
            else 0
        end as back_to_back_repeat_seconds,
        max(ended_epoch_seconds) over earlier_in_order as previous_plays_end_epoch_seconds
    from play_times
    window
        in_order as (partition by user_id, listen_date order by started_epoch_seconds, ended_epoch_seconds desc),
        earlier_in_order as (
            partition by user_id, listen_date order by started_epoch_seconds, ended_epoch_seconds desc
            rows between unbounded preceding and 1 preceding
        )

),

-- Spotify's account data stamps each play's end to the minute, and the start is that end minus
-- the time played: where a play's end and the running end before it both fall on a whole minute,
-- its start is known to the minute only.
timed as (

    select
        *,
        coalesce(
            round(previous_plays_end_epoch_seconds) % 60 = 0 and round(ended_epoch_seconds) % 60 = 0,
            false
        ) as is_stamped_to_the_minute
    from sequenced

),

-- A play sharing more than var overlap_tolerance_seconds (crossfade, jitter) with a play still running
-- when it starts means two streams at once: the time shared runs from its start to the earlier of
-- its end and that play's. Two plays stamped to the minute one after the other may seem to share
-- up to a minute: the minute is added to the tolerance there. (Back to back, a quarter of such
-- plays seemed to overlap by more than 15 s, and over half of the days passed the human ceiling of
-- a quarter. Measured from the start to the running play's end instead, a skip stamped into the
-- same minute as the play before it seemed to sit inside the next play, rounded to start before it.)
flagged as (

    select
        *,
        case
            when previous_plays_end_epoch_seconds is null then 1
            when started_epoch_seconds - previous_plays_end_epoch_seconds > {{ var('session_gap_minutes') }} * 60 then 1
            else 0
        end as is_session_start,
        case
            when previous_plays_end_epoch_seconds is not null
                and least(previous_plays_end_epoch_seconds, ended_epoch_seconds) > started_epoch_seconds + {{ var('overlap_tolerance_seconds') }}
                + case when is_stamped_to_the_minute then 60 else 0 end then 1
            else 0
        end as is_overlapping,
        -- On a schedule: this play starts the same interval (within a second) after the previous
        -- one as that one did after its predecessor, although those two plays differed in length,
        -- or were two different tracks both stopped before their end (or of unknown lengths: two
        -- different tracks played through would be of the same length to the second only by
        -- chance, under 2% of the time). Back to back, a listener's intervals follow the lengths
        -- of the music, and where a listener stops a track varies; a timer's don't. Not a play
        -- stamped into the same minute as the play before: both start at that minute minus their
        -- lengths, so the interval between them is the difference of the lengths, and a listener skipping through tracks, each played a little shorter within
        -- the minute, seemed to start at equal intervals (20 such plays in a day of a real export).
        case
            when not (is_stamped_to_the_minute and round(ended_epoch_seconds) = round(previous_plays_end_epoch_seconds))
                and seconds_since_previous_start > 1
                and abs(seconds_since_previous_start - previous_interval_seconds) <= 1
                and (
                    abs(previous_length_change_seconds) > 1
                    or (
                        previous_plays_may_be_cut_short
                        and seconds_since_previous_start >= {{ var('min_stopped_schedule_seconds') }}
                    )
                ) then 1
            else 0
        end as is_metronomic
    from timed

),

-- The plays of one session all end after every earlier session's plays ended (that is what
-- starts a session), so the running end of the plays before a session's first play is the end of
-- the session before it, and the day's last end is the end of its last session. The longest
-- session then needs only the session starts, not a second sort of every play.
session_starts as (

    select
        user_id,
        listen_date,
        started_epoch_seconds as session_started_epoch_seconds,
        lead(previous_plays_end_epoch_seconds) over (
            partition by user_id, listen_date order by started_epoch_seconds
        ) as next_session_previous_end_epoch_seconds
    from flagged
    where is_session_start = 1

),

day_rhythm as (

    select
        user_id,
        listen_date,
        -- Rounded: parallel sums add in any order, and the last bits of a floating-point result
        -- would differ between re-runs (and so would a model trained on them).
        round(stddev_samp(seconds_since_previous_start) / nullif(avg(seconds_since_previous_start), 0), 6) as inter_play_gap_cv,
        avg(is_overlapping) as overlapping_play_share,
        sum(is_metronomic) as metronomic_play_count,
        round(sum(back_to_back_repeat_seconds) / 60.0, 6) as back_to_back_repeat_minutes,
        sum(is_session_start) as session_count,
        min(started_epoch_seconds) as first_started_epoch_seconds,
        max(ended_epoch_seconds) as last_ended_epoch_seconds
    from flagged
    group by user_id, listen_date

),

longest_sessions as (

    select
        session_starts.user_id,
        session_starts.listen_date,
        max(
            coalesce(session_starts.next_session_previous_end_epoch_seconds, day_rhythm.last_ended_epoch_seconds)
            - session_starts.session_started_epoch_seconds
        ) / 60.0 as longest_session_minutes
    from session_starts
    inner join day_rhythm
        on session_starts.user_id = day_rhythm.user_id
        and session_starts.listen_date = day_rhythm.listen_date
    group by session_starts.user_id, session_starts.listen_date

),

rhythm as (

    select
        day_rhythm.user_id,
        day_rhythm.listen_date,
        day_rhythm.inter_play_gap_cv,
        day_rhythm.overlapping_play_share,
        day_rhythm.metronomic_play_count,
        day_rhythm.back_to_back_repeat_minutes,
        day_rhythm.session_count,
        day_rhythm.first_started_epoch_seconds,
        day_rhythm.last_ended_epoch_seconds,
        longest_sessions.longest_session_minutes
    from day_rhythm
    inner join longest_sessions
        on day_rhythm.user_id = longest_sessions.user_id
        and day_rhythm.listen_date = longest_sessions.listen_date

),

-- Distinct counts come from per-entity groups (one grouping per entity) instead of several
-- count(distinct ...) over all plays, which cost a hash table per column; so do the plays of
-- tracks and artists first played that day, matched once per entity and day instead of per play.
-- Tracks group a read of the plays of their own: grouping sets over one read materialise the
-- read whole first (at 17 M plays, 10 CPU-seconds of a 30 s build, and memory that then spills).
-- Artists group the day's contexts, grouped already and fewer (5.1 M rows for 17 M plays: 2-4
-- CPU-seconds less than a read of their own).
entity_plays as (

    select
        user_id,
        listen_date,
        'track' as entity_type,
        track_id as entity_id,
        count(*) as play_count,
        max(play_seconds) as longest_play_seconds
    from track_events
    group by user_id, listen_date, track_id

    union all

    select
        user_id,
        listen_date,
        'artist' as entity_type,
        artist_id as entity_id,
        sum(play_count) as play_count,
        cast(null as double) as longest_play_seconds
    from day_contexts
    group by user_id, listen_date, artist_id

),

top_entities as (

    select
        entity_plays.user_id,
        entity_plays.listen_date,
        {%- for entity in ['track', 'artist'] %}
        max(case when entity_plays.entity_type = '{{ entity }}' then entity_plays.play_count end) as top_{{ entity }}_plays,
        count(case when entity_plays.entity_type = '{{ entity }}' then 1 end) as distinct_{{ entity }}s,
        sum(
            case
                when entity_plays.entity_type = '{{ entity }}' and first_seen.entity_id is not null then entity_plays.play_count
                else 0
            end
        ) as new_{{ entity }}_plays,
        {%- endfor %}
        count(
            case
                when entity_plays.entity_type = 'track'
                    and entity_plays.longest_play_seconds >= {{ var('royalty_play_seconds') }} then 1
            end
        ) as distinct_streamed_tracks
    from entity_plays
    left join first_seen
        on entity_plays.user_id = first_seen.user_id
        and entity_plays.entity_type = first_seen.entity_type
        and entity_plays.entity_id = first_seen.entity_id
        and entity_plays.listen_date = first_seen.first_listen_date
    group by entity_plays.user_id, entity_plays.listen_date

),

-- The day's plays per local hour: int_user_day_hours holds them for the recomputed days already.
day_hours as (

    select user_id, listen_date, local_hour, play_count
    from {{ ref('int_user_day_hours') }}
    where {{ in_listen_window() }}

),

-- Per user and local hour: on how many of the baseline window's earlier days (before its gap, as the
-- baselines) the user played in that hour. A window over the day number reads each row once (a range join would copy it).
hour_history as (

    select
        user_id,
        listen_date,
        local_hour,
        count(*) over (
            partition by user_id, local_hour
            order by {{ day_number('listen_date') }}
            range between {{ baseline_reach_days() }} preceding and {{ var('baseline_gap_days') | int + 1 }} preceding
        ) as history_days_with_plays
    from {{ ref('int_user_day_hours') }}
    where listen_date >= {{ history_window_start() }}
        and listen_date < {{ listen_window_end() }}

),

-- An hour is unusual for the user when they played nothing in it during the baseline window.
day_hours_with_history as (

    select
        day_hours.user_id,
        day_hours.listen_date,
        day_hours.local_hour,
        day_hours.play_count,
        hour_history.history_days_with_plays
    from day_hours
    inner join hour_history
        on day_hours.user_id = hour_history.user_id
        and day_hours.listen_date = hour_history.listen_date
        and day_hours.local_hour = hour_history.local_hour

),

unusual_hours as (

    select
        user_id,
        listen_date,
        count(*) as active_hours,
        sum(case when history_days_with_plays = 0 then play_count else 0 end)
            / sum(play_count) as unusual_hour_share
    from day_hours_with_history
    group by user_id, listen_date

),

new_context as (

    select
        user_id,
        first_listen_date as listen_date,
        sum(case when entity_type = 'country' then 1 else 0 end) as new_country_count,
        sum(case when entity_type = 'platform' then 1 else 0 end) as new_platform_count
    from first_seen
    where entity_type in ('country', 'platform')
    group by user_id, first_listen_date

),

-- The day's play lengths in whole seconds, and those of them reached by a play that counts as a
-- stream. Grouped apart from the day's aggregate: a distinct count there makes DuckDB materialise
-- that aggregate's whole input first (11 CPU-seconds of a 17 M-play build).
play_lengths as (

    select
        user_id,
        listen_date,
        cast(floor(play_seconds) as bigint) as length_seconds,
        max(play_seconds) as longest_play_seconds
    from length_events
    group by user_id, listen_date, cast(floor(play_seconds) as bigint)

),

day_play_lengths as (

    select
        user_id,
        listen_date,
        count(*) as distinct_play_lengths,
        count(
            case when longest_play_seconds >= {{ var('royalty_play_seconds') }} then 1 end
        ) as distinct_streamed_play_lengths
    from play_lengths
    group by user_id, listen_date

),

daily as (

    select
        user_id,
        listen_date,
        max(timezone) as timezone,
        count(*) as play_count,
        sum(ms_played) / 60000 as minutes_played,
        -- Over the plays whose source says whether they were skipped: a play of a client that never
        -- reports skips is not an unskipped one. Too few of them and the day has no skip rate.
        case
            when count(is_skipped) >= {{ var('min_skip_reported_share') }} * count(*)
                then avg(case when is_skipped then 1 when not is_skipped then 0 end)
        end as skip_rate,
        avg(case when play_seconds < {{ var('short_play_seconds') }} then 1 else 0 end) as short_play_share,
        {{ quantile('play_seconds', 0.5) }} as median_play_seconds,
        avg(
            case
                when local_hour >= {{ var('night_start_hour') }} and local_hour < {{ var('night_end_hour') }} then 1
                else 0
            end
        ) as night_share,
        avg(case when played_at_abroad is not null then 1 else 0 end) as abroad_play_share,
        max(plays_known_until) as plays_known_until
    from window_events
    group by user_id, listen_date

),

final as (

    select
        daily.user_id,
        daily.listen_date,
        daily.timezone,
        daily.play_count,
        -- The day's plays are all in up to this local clock hour: the whole clock hours from the
        -- day's midnight to when the plays are known until, 24 once the day is over; on a day still
        -- running when the data ends, the later hours' plays have not arrived yet.
        cast(
            least(
                floor(
                    (
                        {{ epoch_seconds(to_local_timestamp('daily.plays_known_until', 'daily.timezone')) }}
                        - {{ epoch_seconds('cast(daily.listen_date as timestamp)') }}
                    ) / 3600
                ),
                24
            ) as integer
        ) as observed_until_hour,
        daily.minutes_played,
        top_entities.distinct_tracks,
        top_entities.distinct_artists,
        daily.skip_rate,
        daily.short_play_share,
        daily.median_play_seconds,
        daily.night_share,
        unusual_hours.active_hours,
        rhythm.longest_session_minutes,
        top_entities.top_track_plays / daily.play_count as top_track_share,
        top_entities.top_artist_plays / daily.play_count as top_artist_share,
        top_entities.new_track_plays / daily.play_count as new_track_share,
        top_entities.new_artist_plays / daily.play_count as new_artist_share,
        coalesce(new_context.new_country_count, 0) as new_country_count,
        coalesce(new_context.new_platform_count, 0) as new_platform_count,
        context_counts.day_old_country_count,
        new_context_ages.new_context_age_days,
        new_context_ages.new_context_new_artist_share,
        recent_platform_music.recent_platform_age_days,
        coalesce(recent_platform_music.recent_platform_play_count, 0) as recent_platform_play_count,
        coalesce(recent_platform_music.recent_platform_new_artist_play_count, 0) as recent_platform_new_artist_play_count,
        context_counts.country_count,
        context_counts.platform_count,
        daily.abroad_play_share,
        rhythm.inter_play_gap_cv,
        -- Per distinct track, not per play, and against the lengths that many tracks have by chance:
        -- a fan replaying an album repeats its lengths, a script cutting every play to a few lengths
        -- has fewer lengths than tracks, and past a hundred tracks people's lengths coincide.
        {{ lengths_beyond_chance('day_play_lengths.distinct_play_lengths', 'top_entities.distinct_tracks') }} as distinct_play_length_share,
        -- The same, for the rules, only among plays that count as streams: a script cuts its plays
        -- past the royalty threshold, while a listener's quick skips share a few lengths of seconds
        -- whatever the track (a skipping day is the other engagement signals' evidence). No stream at
        -- all: nothing was cut.
        coalesce(
            {{ lengths_beyond_chance('day_play_lengths.distinct_streamed_play_lengths', 'top_entities.distinct_streamed_tracks') }},
            1.0
        ) as distinct_stream_length_share,
        rhythm.overlapping_play_share,
        unusual_hours.unusual_hour_share,
        rhythm.metronomic_play_count,
        rhythm.back_to_back_repeat_minutes,
        rhythm.session_count,
        rhythm.first_started_epoch_seconds as first_play_started_epoch_seconds,
        rhythm.last_ended_epoch_seconds as last_play_ended_epoch_seconds
    from daily
    inner join day_play_lengths
        on daily.user_id = day_play_lengths.user_id
        and daily.listen_date = day_play_lengths.listen_date
    inner join rhythm
        on daily.user_id = rhythm.user_id
        and daily.listen_date = rhythm.listen_date
    inner join top_entities
        on daily.user_id = top_entities.user_id
        and daily.listen_date = top_entities.listen_date
    inner join context_counts
        on daily.user_id = context_counts.user_id
        and daily.listen_date = context_counts.listen_date
    inner join unusual_hours
        on daily.user_id = unusual_hours.user_id
        and daily.listen_date = unusual_hours.listen_date
    left join new_context
        on daily.user_id = new_context.user_id
        and daily.listen_date = new_context.listen_date
    left join new_context_ages
        on daily.user_id = new_context_ages.user_id
        and daily.listen_date = new_context_ages.listen_date
    left join recent_platform_music
        on daily.user_id = recent_platform_music.user_id
        and daily.listen_date = recent_platform_music.listen_date

)

select * from final
