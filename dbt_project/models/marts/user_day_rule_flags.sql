{{
    config(
        unique_key='listen_date',
        partition_by=('listen_date' if target.type == 'spark' else none),
    )
}}

{#
  Rule verdicts: per-signal deviations from the user's own baseline, grouped into independent
  families; a day is flagged when at least min_deviating_families families deviate, or when a
  decisive signal fires on its own: one listener cannot produce it on an ordinary day, so it
  needs no second family. Decisive are several countries never seen before in one day (a trip
  brings one), a device never used before in a country never seen before on a day that also has
  plays from another country (someone else's device somewhere else while the owner listens at
  home: the classic sign of a taken-over account; the pair stays new the next day when the two
  are played together again, and for a week, var new_context_days, beside plays from another
  country) while it plays someone else's music (var min_new_context_new_artist_share of its plays
  by artists first played once it appeared; the owner's music on a new device somewhere new is a
  trip), the same pair played alone, for as long as it is new, when nearly all its music is
  someone else's (var min_intruder_alone_new_artist_share: an intruder while the owner is silent;
  a traveller on a hotel's TV or a new phone abroad keeps playing some of their own),
  streams overlapping each other far more than usual (two listeners at once), one track looping
  for hours (through half the day's plays, or in many plays far beyond the user's habit, by
  someone who does not loop that long on more than var max_loop_habit_share of their baseline
  days), a day's listening of var min_record_minutes or more and var record_factor times the
  user's own record (a marathon for that user, in however many sessions), plays started on a
  fixed schedule whatever their lengths (a machine's timing), and plays cut to a handful of
  lengths whatever their tracks (a machine's cut, var max_machine_cut_stream_length_share).
  Two signals are their family's evidence without being decisive. A volume collapse (a listener
  with a substantial usual volume near silent at home: far below the usual count and far below
  the user's own light days, both measured against the population's day, and far outside the
  user's own day-to-day spread): people have near-silent days of their own (ill, busy, travelling
  without a phone), and on independently written simulations (two simulators, two runs each) a
  collapse alone flagged 3.5 to 10 ordinary days for every sudden drop it found; a collapse on
  var min_lasting_collapse_days calendar days in a row is decisive (near silence day after day is
  the account's change, not the listener's day), and from then so are the days it began with: a
  run restates the flags of var restated_days days before its window for them. And the new pair
  on a day with plays from one country only (that day or the next) whose music is partly the
  owner's: a traveller listening abroad on a device not used before (a hotel's TV, a new phone)
  looks like that.
  Grain: one row per user_id and listen_date of user_day_features.

  Deviations are robust z-scores, (value - usual) / max(spread, floor), minus that day's median
  z-score over all users with a baseline and divided by the day's spread of z-scores when it is
  wider than usual: when everyone changes together (a holiday, a big release) that is the
  population's day, not an individual anomaly.

  A new account (fewer than min_baseline_days baseline days) has no usual to deviate from, so
  the rules abstain, except where no baseline is needed: the human ceilings (hours of listening,
  hours without a break, active hours, one track looping, a fixed schedule, streams overlapping
  for a quarter of the plays) and, from its second day, several countries never seen before in
  one day and a device and a country new together beside plays from another country.
#}

{%- set signals = deviation_signals() %}
{%- set counted_signals = rule_signals() %}
{%- set families = signal_families() %}
{%- set z_threshold = var('deviation_z_threshold') %}
{%- set has_rule_baseline = 'baseline_days >= ' ~ var('min_baseline_days') %}
{%- set lasting_collapse_days = var('min_lasting_collapse_days') | int %}
{#- Far beyond the user's own record, per signal that has one: its deviation, and for the minutes a decisive signal. #}
{%- set beyond_record = {} %}
{%- for signal in signals if signal.record_floor_var %}
{%- do beyond_record.update({signal.metric:
    signal.metric ~ ' >= ' ~ var(signal.record_floor_var)
    ~ ' and ' ~ signal.metric ~ ' >= ' ~ var('record_factor') ~ ' * record_' ~ signal.metric ~ ' * day_ratio_' ~ signal.metric
    ~ ' and ' ~ has_rule_baseline}) %}
{%- endfor %}
{#- A run of near-silent days that has lasted, every day of it under the light day before it began. #}
{%- set has_lasted = 'has_stayed_under = 1 and near_silent_days >= ' ~ lasting_collapse_days %}
{#- A table written before the columns of a run of days (a silence, overlapping plays) existed carries
    no run into the window (the runs start afresh there, and the schema sync adds the columns for the
    next run); a unit test's mocked
    table (a name, not a relation) is read as it is. #}
{%- set stored_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list
    if is_incremental() and this is not string else [] %}
{%- set carries_silence = is_incremental() and (not stored_columns or 'near_silent_days' in stored_columns) %}
{%- set carries_overlap = is_incremental() and (not stored_columns or 'overlapping_since' in stored_columns) %}
{%- set overlap_plays = 'round(overlapping_play_share * play_count, 6)' %}
{#- A family that is no independent evidence when another signal deviates: listening through more
    hours of the day than usual covers more of the clock, so plays at night and at hours unused
    before rise with it (a binge day into the night is one change, not two); and a day spent in
    one long session, shorter than a working day, deviates in volume because of that session (a
    flight, a road trip, a study day). It still deviates and is cited; it does not count towards
    min_deviating_families. Nor does timing on a quiet day whose plays are the previous night's
    session running on past midnight: its night hours and its low volume are that one late night.
    Nor does engagement when the skips are of artists never played before: that is how people
    preview new music (a release list, a friend's playlist), one change, not two; a machine's cut,
    which a preview does not make, still counts. The skips deviate, or, for a listener who often
    skips (whose spread of skips a preview's do not pass), the short plays deviate and the skip flag
    says they were skipped (at least as many plays skipped as short). #}
{%- set counted_unless = {
    'timing': '(is_active_hours_deviation or coalesce(continues_previous_day_session and is_volume_signal and play_count < expected_play_count, false))',
    'continuity': '(is_volume_signal and longest_session_minutes < ' ~ var('min_session_minutes_beside_volume') ~ ')',
    'engagement': '(is_new_artist_share_deviation and (is_skip_rate_deviation or coalesce(is_short_play_share_deviation and skip_rate >= short_play_share, false)) and not (is_distinct_stream_length_share_deviation or is_machine_timed or is_machine_cut))',
} %}
{#- "Never seen before" needs some history, not a baseline: on an account's first day every country is new.
    The hop goes on the next day when as many countries first played the day before are played again
    (a trip stays in one); that day needed history of its own. #}
{%- set hopping_to_new_countries = '(history_days >= 1 and new_country_count >= ' ~ var('min_new_countries') ~ ')' %}
{%- set country_hopping = '(' ~ hopping_to_new_countries ~ ' or (history_days >= 2 and day_old_country_count >= ' ~ var('min_new_countries') ~ '))' %}
{#- The new pair's music is someone else's through and through: alone, an intruder while the owner is silent. #}
{%- set plays_someone_elses_music_only = 'new_context_new_artist_share >= ' ~ var('min_intruder_alone_new_artist_share') %}

with

features as (

    select * from {{ ref('user_day_features') }}
    where {{ in_restated_window() }}

),

baselines as (

    select
        *,
        -- What the user has usually played by this hour of the day: the whole day's once it is over.
        coalesce(usual_play_count_so_far, usual_play_count) as expected_play_count
    from (
        select
            *,
            -- A silence's own days lower the user's usual within days: the highest usual of the
            -- baseline window before each day is what a day of the silence is held to.
            max(usual_play_count) over (
                partition by user_id
                order by {{ day_number('listen_date') }}
                range between {{ var('baseline_window_days') | int }} preceding and current row
            ) as highest_recent_usual_play_count
        from {{ ref('user_day_baselines') }}
        where listen_date >= cast({{ dbt.dateadd('day', -(var('baseline_window_days') | int), restated_window_start()) }} as date)
            and listen_date < {{ listen_window_end() }}
    ) as with_recent_usuals
    where {{ in_restated_window() }}

),

raw_deviations as (

    select
        features.*,
        baselines.baseline_days,
        baselines.history_days,
        baselines.light_day_play_count,
        baselines.usual_play_count_so_far,
        baselines.light_day_play_count_so_far,
        baselines.expected_play_count,
        coalesce(baselines.light_day_play_count_so_far, baselines.light_day_play_count) as expected_light_day_play_count,
        -- The expected plays scaled up to the highest usual of the baseline window before the day.
        baselines.expected_play_count
            * greatest(1, baselines.highest_recent_usual_play_count / nullif(baselines.usual_play_count, 0))
            as highest_recent_expected_play_count,
        baselines.continues_previous_day_session,
        baselines.looped_days,
        {%- for signal in signals %}
        baselines.usual_{{ signal.metric }},
        {%- if signal.record_floor_var %}
        baselines.record_{{ signal.metric }},
        {%- endif %}
        case
            when baselines.baseline_days >= {{ var('min_days_for_deviation') }}
                then (
                    {{ signal_scale(signal, 'features.' ~ signal.metric) }}
                    - {{ signal_scale(signal, 'baselines.usual_' ~ signal.metric) }}
                ) / greatest(coalesce(baselines.spread_{{ signal.metric }}, 0), {{ signal.scale_floor }})
        end as raw_z_{{ signal.metric }}{{ ',' if not loop.last }}
        {%- endfor %}
    from features
    inner join baselines
        on features.user_id = baselines.user_id
        and features.listen_date = baselines.listen_date

),

-- The population's shift that day: the median deviation over users, and the spread of
-- deviations around it (1.4826 x MAD, a standard deviation for normal data). With too few users
-- on a day (one person's own export, say) the median is that person's own deviation, so there
-- is no population effect: shift 0, spread 1. The collapse reads the day's median share of the
-- usual play count instead (at most 1): on a day when everyone plays a third of their usual (an
-- outage), a user at a tenth of theirs is at a third of the population's day, not near silent.
-- A record is read against the day's median ratio of the value to the usual (at least 1): on a
-- holiday when everyone listens twice as long, twice the user's record is four times.
population_day_effects as (

    select
        listen_date,
        {%- for signal in signals %}
        case
            when count(raw_z_{{ signal.metric }}) >= {{ var('min_users_for_day_effect') }}
                then {{ quantile('raw_z_' ~ signal.metric, 0.5) }}
            else 0
        end as day_effect_{{ signal.metric }},
        {%- if signal.record_floor_var %}
        greatest(
            {{ day_median_ratio(signal.metric, 'usual_' ~ signal.metric, 'raw_z_' ~ signal.metric) }},
            1
        ) as day_ratio_{{ signal.metric }},
        {%- endif %}
        {%- endfor %}
        least({{ day_median_ratio('play_count', 'expected_play_count', 'raw_z_play_count') }}, 1) as day_play_count_ratio
    from raw_deviations
    group by listen_date

),

population_day_spreads as (

    select
        raw_deviations.listen_date,
        {%- for signal in signals %}
        case
            when count(raw_deviations.raw_z_{{ signal.metric }}) >= {{ var('min_users_for_day_effect') }}
                then 1.4826 * {{ quantile('abs(raw_deviations.raw_z_' ~ signal.metric ~ ' - population_day_effects.day_effect_' ~ signal.metric ~ ')', 0.5) }}
            else 1
        end as day_spread_{{ signal.metric }}{{ ',' if not loop.last }}
        {%- endfor %}
    from raw_deviations
    inner join population_day_effects
        on raw_deviations.listen_date = population_day_effects.listen_date
    group by raw_deviations.listen_date

),

-- A day on which everyone's deviations also spread wider than usual (a holiday: some listen
-- twice as much, some five times) makes a large deviation less surprising: deviations are
-- divided by that day's spread when it exceeds 1 (ordinary days stay as they are).
deviations as (

    select
        raw_deviations.*,
        {%- for signal in signals %}
        (raw_deviations.raw_z_{{ signal.metric }} - population_day_effects.day_effect_{{ signal.metric }})
            / greatest(population_day_spreads.day_spread_{{ signal.metric }}, 1) as {{ signal.metric }}_z,
        {%- if signal.record_floor_var %}
        population_day_effects.day_ratio_{{ signal.metric }},
        {%- endif %}
        {%- endfor %}
        population_day_effects.day_play_count_ratio
    from raw_deviations
    inner join population_day_effects
        on raw_deviations.listen_date = population_day_effects.listen_date
    inner join population_day_spreads
        on raw_deviations.listen_date = population_day_spreads.listen_date

),

signals as (

    select
        *,
        {%- for signal in counted_signals %}
        {%- set change = signal.metric ~ ' - usual_' ~ signal.metric %}
        {%- set min_change = var(signal.min_change_var) %}
        coalesce(
            (
                (
                    {%- if signal.direction == 'up' %}
                    {{ signal.metric }}_z >= {{ z_threshold }} and {{ change }} >= {{ min_change }}
                    {%- elif signal.direction == 'down' %}
                    {{ signal.metric }}_z <= -{{ z_threshold }} and {{ change }} <= -{{ min_change }}
                    {%- if signal.below_var %}
                    and {{ signal.metric }} < {{ var(signal.below_var) }}
                    {%- endif %}
                    {%- else %}
                    abs({{ signal.metric }}_z) >= {{ z_threshold }} and abs({{ change }}) >= {{ min_change }}
                    {%- endif %}
                    and {{ has_rule_baseline }}
                )
                {%- if signal.record_floor_var %}
                -- Far beyond the user's own record, however widely their days swing.
                or ({{ beyond_record[signal.metric] }})
                {%- endif %}
                {%- if signal.ceiling_var %}
                -- No person listens like that, new account or not: a ceiling needs no baseline.
                or {{ signal.metric }} >= {{ var(signal.ceiling_var) }}
                {%- endif %}
                {%- if signal.min_count_var %}
                -- From a user whose usual day has none, the plays counted below are the change,
                -- however often the baseline's other days had some (a second listener who keeps
                -- coming back widens the spread, not the usual).
                or (usual_{{ signal.metric }} = 0 and {{ has_rule_baseline }})
                {%- endif %}
            )
            {%- if signal.min_count_var %}
            -- Rounded: a share times its plays is a whole number up to float error (2 / 49 x 49 < 2).
            and round({{ signal.metric }} * play_count, 6) >= {{ var(signal.min_count_var) }}
            {%- elif signal.family != 'volume' %}
            and (
                play_count >= {{ var('min_plays_for_pattern_signals') }}
                {%- if signal.per_play %}
                -- A share of fewer plays: its change beyond the sampling error of so few, on a day of
                -- the user's usual volume (a near-silent day's last plays are where the day ended).
                or (
                    abs({{ change }}) >= {{ var('few_plays_share_standard_errors') }} * 0.5 / sqrt(play_count)
                    and play_count_z > -{{ z_threshold }}
                )
                {%- endif %}
            )
            {%- endif %},
            false
        ) as is_{{ signal.metric }}_deviation,
        {%- endfor %}
        coalesce(
            {{ country_hopping }}
                or (
                    -- The pair plays someone else's music: the owner's own, on a new device somewhere
                    -- new, is a trip (a car across a border beside the morning's plays at home).
                    new_context_new_artist_share >= {{ var('min_new_context_new_artist_share') }}
                    and (
                        -- Days of history grow by at most one a day, so this many today means the
                        -- device and the country first appeared together once the account had a
                        -- week of history: a traveller's new phone abroad says little while the
                        -- account is new.
                        (
                            history_days >= {{ var('min_baseline_days') }} + new_context_age_days
                            and (
                                new_context_age_days < {{ var('new_context_alone_days') }}
                                -- Someone else's music through and through: for as long as the pair is new.
                                or {{ plays_someone_elses_music_only }}
                            )
                        )
                        -- Beside plays from another country the pair needs only some history before
                        -- it, as several new countries do: someone somewhere else while the owner
                        -- listens at home is no less an intrusion on an account's second day.
                        or (history_days >= 1 + new_context_age_days and country_count >= 2)
                    )
                ),
            false
        ) as is_new_context_deviation,
        -- Someone else's music on a recent device: a second listener.
        coalesce(
            recent_platform_new_artist_play_count >= {{ var('min_recent_platform_new_artist_plays') }}
                and recent_platform_new_artist_play_count
                    >= {{ var('min_intruder_alone_new_artist_share') }} * recent_platform_play_count,
            false
        ) as is_second_listener_platform,
        coalesce({{ country_hopping }}, false) as is_country_hopping,
        -- A day's listening far beyond the user's own record (the volume deviation's record condition)
        -- is a marathon for that user, in however many sessions: decisive, as the 18-hour ceiling is.
        coalesce({{ beyond_record['minutes_played'] }}, false) as is_far_beyond_record,
        -- A human ceiling, like the ones above: plays started on a fixed schedule whatever their
        -- lengths are a machine's.
        coalesce(metronomic_play_count >= {{ var('min_metronomic_plays') }}, false) as is_machine_timed,
        -- So are streams cut to a handful of lengths whatever their tracks (a timer that jitters by
        -- seconds keeps no fixed schedule, but it cuts its plays alike).
        coalesce(
            distinct_stream_length_share <= {{ var('max_machine_cut_stream_length_share') }}
                and play_count >= {{ var('min_plays_for_pattern_signals') }},
            false
        ) as is_machine_cut,
        coalesce(
            is_near_silent
                and is_under_light_day
                -- Far outside the user's own day-to-day spread (a deviation, but without the minimum
                -- change, which a listener of 20 plays cannot lose): a listener whose days swing
                -- widely has near-silent days of their own.
                and play_count_z <= -{{ z_threshold }},
            false
        ) as is_volume_collapse
    from (
        select
            *,
            {%- for name, usual in [('is_near_silent', 'expected_play_count'), ('is_quiet', 'highest_recent_expected_play_count')] %}
            coalesce(
                {{ has_rule_baseline }}
                    and {{ usual }} >= {{ var('min_usual_plays_for_collapse') }}
                    and play_count <= {{ var('volume_collapse_share') }} * {{ usual }} * day_play_count_ratio
                    -- A day spent abroad explains a quiet day (a flight, a day split by the time shift).
                    and abroad_play_share < 0.5
                    -- So does a day whose only plays are the tail of the previous night's session.
                    and continues_previous_day_session is not true,
                false
            ) as {{ name }},
            {%- endfor %}
            coalesce(
                play_count <= {{ var('volume_collapse_light_day_share') }} * expected_light_day_play_count * day_play_count_ratio,
                false
            ) as is_under_light_day
        from deviations
    ) as near_silence

),

-- A heavy listener's account near silent day after day: the account changed, not the listener's
-- day (an illness, a busy day passes). A run begins with a near-silent day under var
-- volume_collapse_light_day_share of its light day and goes on over quiet
-- days (near silent against the highest usual of the baseline window before the day: within days
-- the silence's own days lower the usual, and may not excuse it) and over days without any play, up
-- to var max_silent_gap_days of them at a time (a longer absence is a holiday or a phone left behind);
-- it ends with a day of more plays. Each of its days is held to the light day before the run began
-- (its first day's baseline): the silence's days also become the user's light days and widen the
-- spread of their days, and neither may excuse the silence that made them. From the
-- run's var min_lasting_collapse_days-th near-silent day, while every one of them stayed under var
-- volume_collapse_light_day_share of that light day, it is decisive, without the spread of the user's
-- days that a single collapse needs: a listener whose days swing widely has a near-silent day now and
-- then, not several in a row. Once a day of the run is over it, the run no longer counts
-- (light_day_play_count_before_silence is null from then on). Once it counts, its earlier days are
-- flagged too (silence_lasting_from). The last day with plays before the restated days, as the last
-- run left it, comes from this table.
played_days as (

    select
        user_id,
        listen_date,
        -- A silence begins with a near-silent day under its light day's share. A drop that begins in
        -- the middle of a day leaves that day near silent but over the share: begun there, the
        -- silence would be over on its first day.
        is_near_silent and is_under_light_day as begins_silence,
        is_quiet,
        listen_date as began,
        expected_light_day_play_count as light_day_before,
        1 as near_silent_days_before,
        play_count,
        day_play_count_ratio,
        false as is_from_last_run
    from signals
    {%- if carries_silence %}
    union all
    select
        user_id,
        listen_date,
        near_silent_since is not null as begins_silence,
        near_silent_since is not null as is_quiet,
        near_silent_since as began,
        light_day_play_count_before_silence as light_day_before,
        near_silent_days as near_silent_days_before,
        null as play_count,
        null as day_play_count_ratio,
        true as is_from_last_run
    from ({{ last_row_before_restated_days(var('max_silent_gap_days')) }}) as last_day_with_plays
    {%- endif %}

),

silent_runs as (

    select
        *,
        -- A quiet day goes on from the day with plays before it when that one was quiet too.
        {{ day_run_number(var('max_silent_gap_days'), 'is_quiet and previous_is_quiet') }} as silent_run_number
    from (
        select
            *,
            lag(is_quiet) over (partition by user_id order by listen_date) as previous_is_quiet,
            lag(listen_date) over (partition by user_id order by listen_date) as previous_listen_date
        from played_days
    ) as with_previous_day

),

silences as (

    select
        user_id,
        listen_date,
        near_silent_since,
        near_silent_days,
        light_day_play_count_before_silence,
        is_lasting_collapse,
        -- On the run's days before it became a lasting collapse, the day it did: the silence was the
        -- account's change from its first day, not only from the day it was recognised.
        case when lasting_from > listen_date then lasting_from end as silence_lasting_from
    from (
        select
            user_id,
            listen_date,
            run_began as near_silent_since,
            near_silent_days,
            case when has_stayed_under = 1 then run_light_day end as light_day_play_count_before_silence,
            {{ has_lasted }} as is_lasting_collapse,
            min(case when {{ has_lasted }} then listen_date end) over (partition by user_id, silent_run_number) as lasting_from
        from (
            select
                *,
                sum(near_silent_days_before) over run_so_far as near_silent_days,
                -- The last run kept the light day of its last day while its run stayed under.
                min(
                    case
                        when is_from_last_run and light_day_before is not null then 1
                        when is_from_last_run then 0
                        when play_count <= {{ var('volume_collapse_light_day_share') }} * run_light_day * day_play_count_ratio
                            then 1
                        else 0
                    end
                ) over run_so_far as has_stayed_under
            from (
                select
                    *,
                    first_value(began) over silent_run as run_began,
                    first_value(light_day_before) over silent_run as run_light_day
                from (
                    -- The quiet days before a silence began in the run are not its own.
                    select
                        *,
                        max(case when begins_silence then 1 else 0 end) over (
                            partition by user_id, silent_run_number order by listen_date
                            rows between unbounded preceding and current row
                        ) as has_begun
                    from silent_runs
                    where is_quiet
                ) as quiet_days
                where has_begun = 1
                window silent_run as (partition by user_id, silent_run_number order by listen_date)
            ) as run_starts
            window run_so_far as (
                partition by user_id, silent_run_number order by listen_date rows between unbounded preceding and current row
            )
        ) as checked_runs
    ) as lasting_runs

),

-- A second listener on the account day after day: a run of days with var min_overlapping_plays
-- overlapping plays or more, each at most var max_overlap_gap_days days after the one before (a
-- second listener does not play every day), is held to the user's usual share of overlapping plays
-- before its first day. Within days the run's own overlaps are the user's usual, and may not excuse
-- the sharing that made them: from a user whose usual day had none, every day of the run is the
-- change, as its first was. The last such day before the restated days, as the last run left it,
-- comes from this table.
overlap_days as (

    select
        user_id,
        listen_date,
        listen_date as began,
        -- The usual counts only from a day with a rule baseline: a new account has none to keep.
        case when {{ has_rule_baseline }} then usual_overlapping_play_share end as usual_before
    from signals
    where {{ overlap_plays }} >= {{ var('min_overlapping_plays') }}
    {%- if carries_overlap %}
    union all
    select user_id, listen_date, overlapping_since as began, usual_overlapping_play_share_before as usual_before
    from ({{ last_row_before_restated_days(var('max_overlap_gap_days'), 'overlapping_since is not null') }}) as last_overlap_day
    {%- endif %}

),

overlap_runs as (

    select
        user_id,
        listen_date,
        first_value(began) over overlap_run as overlapping_since,
        first_value(usual_before) over overlap_run as usual_overlapping_play_share_before
    from (
        select
            *,
            {{ day_run_number(var('max_overlap_gap_days')) }} as overlap_run_number
        from (
            select *, lag(listen_date) over (partition by user_id order by listen_date) as previous_listen_date
            from overlap_days
        ) as with_previous_day
    ) as numbered_days
    window overlap_run as (partition by user_id, overlap_run_number order by listen_date)

),

families as (

    select
        signals.*,
        silences.near_silent_since,
        silences.near_silent_days,
        silences.light_day_play_count_before_silence,
        coalesce(silences.is_lasting_collapse, false) as is_lasting_collapse,
        silences.silence_lasting_from,
        overlap_runs.overlapping_since,
        overlap_runs.usual_overlapping_play_share_before,
        coalesce(overlap_runs.usual_overlapping_play_share_before = 0, false) as is_lasting_overlap,
        {%- for family in families %}
        (
            {%- for signal in counted_signals if signal.family == family %}
            is_{{ signal.metric }}_deviation or
            {%- endfor %}
            {{ {'context': 'is_new_context_deviation or is_second_listener_platform or coalesce(overlap_runs.usual_overlapping_play_share_before = 0, false)', 'volume': 'is_volume_collapse or coalesce(silences.is_lasting_collapse, false) or silences.silence_lasting_from is not null', 'engagement': 'is_machine_timed or is_machine_cut'}.get(family, 'false') }}
        ) as is_{{ family }}_signal,
        {%- endfor %}
        -- One track for hours, its share deviating (the deviation holds the human ceiling of half
        -- the day's plays, which needs no baseline, and the plays a share needs): at that ceiling,
        -- or below it in many plays of the track (sleep sounds repeat a long track a dozen times a
        -- night); and on repeat, much of it back to back, not a favourite come back to all day; by
        -- someone who does not loop as a habit (sleep sounds every night).
        coalesce(
            is_top_track_share_deviation
                and top_track_share * minutes_played >= {{ var('min_loop_minutes') }}
                and back_to_back_repeat_minutes >= {{ var('min_loop_back_to_back_minutes') }}
                and (
                    top_track_share >= {{ var('max_human_top_track_share') }}
                    or round(top_track_share * play_count) >= {{ var('min_loop_plays') }}
                )
                and coalesce(looped_days, 0) <= {{ var('max_loop_habit_share') }} * coalesce(baseline_days, 0),
            false
        ) as is_track_loop
    from signals
    left join silences
        on signals.user_id = silences.user_id
        and signals.listen_date = silences.listen_date
    left join overlap_runs
        on signals.user_id = overlap_runs.user_id
        and signals.listen_date = overlap_runs.listen_date

),

counted as (

    select
        *,
        {%- for family in families %}
        case
            when is_{{ family }}_signal{{ ' and not ' ~ counted_unless[family] if family in counted_unless }} then 1
            else 0
        end{{ ' +' if not loop.last }}
        {%- endfor %}
        as rule_signal_count,
        is_country_hopping
            or coalesce(
                is_new_context_deviation
                    and (country_count >= 2 or {{ plays_someone_elses_music_only }}),
                false
            )
            or is_second_listener_platform
            or is_overlapping_play_share_deviation
            or is_lasting_overlap
            or is_track_loop
            or is_machine_timed
            or is_machine_cut
            or is_far_beyond_record
            or is_lasting_collapse
            or silence_lasting_from is not null as has_decisive_signal
    from families

),

final as (

    select
        user_id,
        listen_date,
        timezone,
        baseline_days,
        not ({{ has_rule_baseline }}) as is_cold_start,
        play_count,
        minutes_played,
        distinct_tracks,
        distinct_artists,
        skip_rate,
        short_play_share,
        median_play_seconds,
        night_share,
        active_hours,
        longest_session_minutes,
        top_track_share,
        top_artist_share,
        new_track_share,
        new_artist_share,
        new_country_count,
        day_old_country_count,
        new_context_age_days,
        new_context_new_artist_share,
        recent_platform_age_days,
        recent_platform_play_count,
        recent_platform_new_artist_play_count,
        new_platform_count,
        country_count,
        platform_count,
        abroad_play_share,
        inter_play_gap_cv,
        distinct_play_length_share,
        distinct_stream_length_share,
        overlapping_play_share,
        unusual_hour_share,
        metronomic_play_count,
        back_to_back_repeat_minutes,
        {%- for signal in signals %}
        usual_{{ signal.metric }},
        {{ signal.metric }}_z,
        {%- endfor %}
        light_day_play_count,
        observed_until_hour,
        usual_play_count_so_far,
        light_day_play_count_so_far,
        {%- for family in families %}
        is_{{ family }}_signal,
        {%- endfor %}
        rule_signal_count,
        concat_ws(
            ',',
            {%- for family in families %}
            case when is_{{ family }}_signal then '{{ family }}' end{{ ',' if not loop.last }}
            {%- endfor %}
        ) as rule_signals,
        is_volume_collapse,
        near_silent_since,
        near_silent_days,
        light_day_play_count_before_silence,
        is_lasting_collapse,
        silence_lasting_from,
        overlapping_since,
        usual_overlapping_play_share_before,
        is_lasting_overlap,
        is_second_listener_platform,
        has_decisive_signal,
        rule_signal_count >= {{ var('min_deviating_families') }} or has_decisive_signal as rule_flag,
        concat_ws(
            '; ',
            {%- for signal in counted_signals %}
            case when is_{{ signal.metric }}_deviation then {{ signal_reason_sql(signal) }} end,
            {%- endfor %}
            case
                when is_volume_collapse and observed_until_hour < 24
                    then 'near silent so far: ' || {{ count_with_noun('play_count', 'play', 'plays') }} || ' by '
                        || {{ clock_hour_for_reason('observed_until_hour') }} || ' vs usual '
                        || {{ format_for_reason('expected_play_count', 'count') }} || ' and '
                        || {{ format_for_reason('expected_light_day_play_count', 'count') }} || ' on light days by then'
                when is_volume_collapse and not is_play_count_deviation
                    then 'near silent: ' || {{ count_with_noun('play_count', 'play', 'plays') }} || ' vs usual '
                        || {{ format_for_reason('usual_play_count', 'count') }} || ' and '
                        || {{ format_for_reason('light_day_play_count', 'count') }} || ' on light days'
            end,
            case
                when is_lasting_collapse
                    then 'near silent '
                        || case
                            when {{ day_number('listen_date') }} - {{ day_number('near_silent_since') }} + 1 = near_silent_days
                                then {{ count_with_noun('near_silent_days', 'day', 'days') }} || ' in a row since '
                                    || cast(near_silent_since as {{ dbt.type_string() }})
                            else 'since ' || cast(near_silent_since as {{ dbt.type_string() }}) || ': '
                                || {{ count_with_noun('near_silent_days', 'day', 'days') }} || ' of a few plays and '
                                || {{ count_with_noun(day_number('listen_date') ~ ' - ' ~ day_number('near_silent_since') ~ ' + 1 - near_silent_days', 'day', 'days') }}
                                || ' without any'
                        end
                        || ' (' || {{ count_with_noun('play_count', 'play', 'plays') }} || '; '
                        || {{ format_for_reason('light_day_play_count_before_silence', 'count') }} || ' on a light day before)'
                when silence_lasting_from is not null
                    then 'near silent since ' || cast(near_silent_since as {{ dbt.type_string() }})
                        || ', the start of a silence of {{ lasting_collapse_days }} near-silent days by '
                        || cast(silence_lasting_from as {{ dbt.type_string() }})
                        || ' (' || {{ count_with_noun('play_count', 'play', 'plays') }} || '; '
                        || {{ format_for_reason('light_day_play_count_before_silence', 'count') }} || ' on a light day before)'
            end,
            case
                when is_lasting_overlap and not is_overlapping_play_share_deviation
                    then {{ format_for_reason('overlapping_play_share', 'percent') }}
                        || '% of plays overlap another play, on days with overlapping plays since '
                        || cast(overlapping_since as {{ dbt.type_string() }}) || ' (usually none before)'
            end,
            case
                when is_second_listener_platform
                    then {{ format_for_reason('recent_platform_new_artist_play_count', 'count') }} || ' of '
                        || {{ count_with_noun('recent_platform_play_count', 'play', 'plays') }}
                        || ' on a platform first used '
                        || case
                            when recent_platform_age_days = 0 then 'today'
                            else {{ count_with_noun('recent_platform_age_days', 'day', 'days') }} || ' ago'
                        end
                        || ' by artists first played since (someone else''s music)'
            end,
            case
                when is_machine_timed
                    then {{ count_with_noun('metronomic_play_count', 'play', 'plays') }}
                        || ' started on a fixed schedule (same interval, whatever the length of the play before)'
            end,
            case
                when is_machine_cut and not is_distinct_stream_length_share_deviation
                    then 'plays of {{ var('royalty_play_seconds') }} s or more cut to '
                        || {{ format_for_reason('distinct_stream_length_share', 'percent') }}
                        || '% of the different lengths their tracks would have (a person''s: over '
                        || {{ format_for_reason(var('max_machine_cut_stream_length_share') | string, 'percent') }} || '%)'
            end,
            -- A share says how much of the day; a loop is also how many plays and how long.
            case
                when is_track_loop
                    then 'on repeat: the same track '
                        || {{ count_with_noun('cast(round(top_track_share * play_count, 0) as bigint)', 'time', 'times') }}
                        || ', ' || {{ format_for_reason('top_track_share * minutes_played', 'count') }} || ' min in all'
            end,
            case
                when is_country_hopping and not {{ hopping_to_new_countries }}
                    then {{ count_with_noun('day_old_country_count', 'country', 'countries') }}
                        || ' first played the day before, again in one day'
                when is_new_context_deviation and not is_country_hopping and new_context_age_days > 0
                    then 'plays from a country and a platform first used together '
                        || {{ count_with_noun('new_context_age_days', 'day', 'days') }} || ' ago'
                when is_new_context_deviation
                    then {{ count_with_noun('new_country_count', 'new country', 'new countries') }}
                        || case
                            when new_platform_count > 0
                                then ' and ' || {{ count_with_noun('new_platform_count', 'new platform', 'new platforms') }}
                            else ''
                        end
                        || case when is_country_hopping then ' in one day' else '' end
            end
            || case
                when is_new_context_deviation and not is_country_hopping
                    then ', ' || {{ format_for_reason('new_context_new_artist_share', 'percent') }}
                        || '% of their plays by artists not played before'
                else ''
            end
            -- What makes the pair an intrusion rather than a trip: someone else listening elsewhere.
            || case
                when not is_country_hopping and country_count >= 2 then ', beside plays from another country'
                else ''
            end
        ) as rule_reasons
    from counted

)

select * from final
