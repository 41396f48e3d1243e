{#
  The deviation signals the rules read, grouped into independent families. Correlated signals
  share a family, and a family counts once however many of its signals deviate. Active hours
  are an amount of listening (how much of the day), like minutes, so they are volume: a fan's
  long release day moves minutes and active hours together, and that is one change, not two.
  Timing is when the plays fall (at night, at hours the user never uses).

  metric          a user_day_features column with a point-in-time baseline
  family          volume | continuity | timing | content | engagement | context
  direction       up, down or both: which way is suspicious
  log_scale       compare ln(1 + value): amounts of listening vary by factors, not by minutes,
                  so a heavy listener's ordinary 2x day is not a 6-sigma event
  scale_floor     the smallest robust spread used (in log units where log_scale), so a user
                  with a near-constant metric is not flagged for a trivial change
  min_change_var  the dbt var holding the smallest raw change that counts
  ceiling_var     optional dbt var: a value at or above it deviates whatever the user's
                  baseline, because no person listens like that (22 hours without a break); a
                  wide personal spread must not hide the obvious case
  min_count_var   optional dbt var, for a share that is near zero for everyone: the evidence
                  the signal needs is this many plays with the property (share x plays)
                  instead of min_plays_for_pattern_signals plays in the day; 2 overlapping
                  plays from a user whose plays never overlapped say more than 20 plays do.
                  With a rule baseline whose usual is 0, that many plays deviate whatever
                  the spread
  per_play        optional, true for a share of a property each play has on its own (its clock
                  hour, its length, its skip): a day's share of n plays is then a sample of
                  them, whose standard error is at most 0.5 / sqrt(n). Below
                  min_plays_for_pattern_signals plays the share still counts when its change
                  is at least few_plays_share_standard_errors of those and the day's play count
                  is not far below the user's usual (a light listener's night of short plays).
                  Not the shares of what is new to the user (hours unused, artists never
                  played): a listener of a few plays a day has a sparse history too, so a
                  handful of plays falls outside it by chance; nor the top track's share, which
                  a favourite played three times in five makes
  below_var       optional dbt var, for a down signal: the value deviates only below it. A
                  median play of two minutes or more is a day of plays listened to, not cut
                  short, however long the user's usual plays (half-hour sleep sounds, long
                  classical movements: a day of ordinary songs beside them halves the median)
  record_floor_var
                  optional dbt var, for an amount that only goes up: the value also deviates,
                  with a rule baseline, when it is at least record_factor times the user's
                  record (the most on any baseline day; the baselines give record_<metric>,
                  times the day's median ratio of the value to the usual over all users when
                  that is above 1, so that a holiday raises every record) and at least this
                  var; a listener whose days range from minutes to hours has a log spread so
                  wide that no z-score reaches the obvious case below the human ceilings
  light_day_quantile
                  optional, log-scale signals only: the baselines also give
                  light_day_<metric>, this quantile of the metric over the baseline days, so
                  that a collapse is judged against how low the user's own quiet days go, not
                  only against the median
  rule            optional, false for a signal the rules do not count: its z-score is only an
                  input of the Isolation Forest
  unit            how the reason prints the value: minutes, hours, count, percent, seconds, ratio
  noun            optional, for a count: [singular, plural] printed after the day's value, so
                  that a day with one play does not read "1 plays"
  label           the reason's wording; {value} and {usual} are filled in
#}
{% macro deviation_signals() %}
    {{ return([
        {'metric': 'minutes_played', 'family': 'volume', 'direction': 'both', 'log_scale': true, 'scale_floor': 0.25, 'min_change_var': 'min_minutes_change', 'ceiling_var': 'max_human_minutes', 'record_floor_var': 'min_record_minutes', 'unit': 'count', 'label': '{value} min vs usual {usual}'},
        {'metric': 'play_count', 'family': 'volume', 'direction': 'both', 'log_scale': true, 'scale_floor': 0.25, 'min_change_var': 'min_play_count_change', 'light_day_quantile': 0.1, 'unit': 'count', 'noun': ['play', 'plays'], 'label': '{value} vs usual {usual}'},
        {'metric': 'longest_session_minutes', 'family': 'continuity', 'direction': 'up', 'log_scale': true, 'scale_floor': 0.25, 'min_change_var': 'min_session_minutes_change', 'ceiling_var': 'max_human_session_minutes', 'record_floor_var': 'min_record_session_minutes', 'unit': 'hours', 'label': 'longest continuous listening {value} h vs usual {usual} h'},
        {'metric': 'active_hours', 'family': 'volume', 'direction': 'up', 'scale_floor': 1, 'min_change_var': 'min_active_hours_change', 'ceiling_var': 'max_human_active_hours', 'unit': 'count', 'label': 'active in {value} hours of the day vs usual {usual}'},
        {'metric': 'night_share', 'family': 'timing', 'direction': 'up', 'scale_floor': 0.05, 'min_change_var': 'min_share_change', 'per_play': true, 'unit': 'percent', 'label': '{value}% of plays at night vs usual {usual}%'},
        {'metric': 'unusual_hour_share', 'family': 'timing', 'direction': 'up', 'scale_floor': 0.05, 'min_change_var': 'min_share_change', 'unit': 'percent', 'label': '{value}% of plays at hours unused in the baseline window vs usual {usual}%'},
        {'metric': 'top_track_share', 'family': 'content', 'direction': 'up', 'scale_floor': 0.05, 'min_change_var': 'min_share_change', 'ceiling_var': 'max_human_top_track_share', 'unit': 'percent', 'label': 'one track is {value}% of plays vs usual {usual}%'},
        {'metric': 'new_artist_share', 'family': 'content', 'direction': 'up', 'scale_floor': 0.05, 'min_change_var': 'min_share_change', 'unit': 'percent', 'label': '{value}% of plays from artists never played before vs usual {usual}%'},
        {'metric': 'new_track_share', 'family': 'content', 'direction': 'up', 'scale_floor': 0.05, 'min_change_var': 'min_share_change', 'rule': false, 'unit': 'percent', 'label': '{value}% of plays of tracks never played before vs usual {usual}%'},
        {'metric': 'short_play_share', 'family': 'engagement', 'direction': 'up', 'scale_floor': 0.05, 'min_change_var': 'min_share_change', 'per_play': true, 'unit': 'percent', 'label': '{value}% plays under ' ~ var('short_play_seconds') ~ ' s vs usual {usual}%'},
        {'metric': 'skip_rate', 'family': 'engagement', 'direction': 'up', 'scale_floor': 0.05, 'min_change_var': 'min_share_change', 'per_play': true, 'unit': 'percent', 'label': '{value}% of plays skipped vs usual {usual}%'},
        {'metric': 'median_play_seconds', 'family': 'engagement', 'direction': 'down', 'scale_floor': 10, 'min_change_var': 'min_play_seconds_change', 'below_var': 'listened_median_play_seconds', 'unit': 'count', 'label': 'median play {value} s vs usual {usual} s'},
        {'metric': 'distinct_play_length_share', 'family': 'engagement', 'direction': 'down', 'scale_floor': 0.05, 'min_change_var': 'min_regularity_change', 'rule': false, 'unit': 'percent', 'label': 'plays cut to {value}% of the different lengths their tracks would have vs usual {usual}%'},
        {'metric': 'distinct_stream_length_share', 'family': 'engagement', 'direction': 'down', 'scale_floor': 0.05, 'min_change_var': 'min_regularity_change', 'unit': 'percent', 'label': 'plays of ' ~ var('royalty_play_seconds') ~ ' s or more cut to {value}% of the different lengths their tracks would have vs usual {usual}%'},
        {'metric': 'inter_play_gap_cv', 'family': 'engagement', 'direction': 'down', 'scale_floor': 0.1, 'min_change_var': 'min_regularity_change', 'rule': false, 'unit': 'ratio', 'label': 'machine-regular gaps between plays (variation {value} vs usual {usual})'},
        {'metric': 'overlapping_play_share', 'family': 'context', 'direction': 'up', 'scale_floor': 0.005, 'min_change_var': 'min_overlap_share_change', 'ceiling_var': 'max_human_overlapping_play_share', 'min_count_var': 'min_overlapping_plays', 'unit': 'percent', 'label': '{value}% of plays overlap another play vs usual {usual}%'},
    ]) }}
{% endmacro %}

{#
  The signals the rules count. The day's variation of gaps between plays is not one of them: it
  falls whenever a day is one long session (no gaps between sessions), so alone it flagged ordinary
  days and no anomaly day that nothing else flagged (measured on six simulated data sets); plays on a
  fixed schedule (metronomic_play_count) are the rules' evidence of a machine's timing instead.
  Nor is the share of tracks never played before: a fan's day with a new album by an artist they
  know is all new tracks; someone else's taste shows as artists never played before. On two
  independently written simulators (two runs each) leaving it out cost one anomaly day a run on
  one and none on the other, and took 2-5 ordinary days a run off the flagged (release days
  26% / 24% -> 16% / 18% on the second); on the default profile it changed nothing.
  Nor are the different play lengths over all plays: a listener's quick skips share a few
  lengths of seconds, so on real exports a day of skipping read as plays cut to a few lengths (the
  engagement evidence of 8 of 27 flagged days of eleven people). The rules count the plays that are
  streams instead (distinct_stream_length_share); the forest reads the all-plays measure only, and
  with it its skip storms (given streams only, hybrid recall of skip storms fell from 0.93-0.98 to
  0.80-0.94 on four runs of two independently written simulators).
#}
{% macro rule_signals() %}
    {%- set counted = [] %}
    {%- for signal in deviation_signals() if signal.get('rule', true) %}
        {%- do counted.append(signal) %}
    {%- endfor %}
    {{ return(counted) }}
{% endmacro %}

{% macro signal_families() %}
    {{ return(['volume', 'continuity', 'timing', 'content', 'engagement', 'context']) }}
{% endmacro %}

{# The quantiles of a log-scale signal's own value in its baseline: its light day, then its median. #}
{% macro level_fractions(signal) -%}
    {{ return(([signal.light_day_quantile] if signal.light_day_quantile else []) + [0.5]) }}
{%- endmacro %}

{# The value a signal is compared on: ln(1 + x) for log-scale signals, x otherwise. #}
{% macro signal_scale(signal, expression) -%}
    {%- if signal.log_scale -%} ln(1 + {{ expression }}) {%- else -%} {{ expression }} {%- endif -%}
{%- endmacro %}

{# A number as reason text, in the signal's unit. #}
{% macro format_for_reason(expression, unit) -%}
    {%- if unit == 'percent' -%}
        cast(cast(round(100 * {{ expression }}, 0) as bigint) as {{ dbt.type_string() }})
    {%- elif unit == 'hours' -%}
        cast(round({{ expression }} / 60.0, 1) as {{ dbt.type_string() }})
    {%- elif unit == 'ratio' -%}
        cast(round({{ expression }}, 2) as {{ dbt.type_string() }})
    {%- else -%}
        cast(cast(round({{ expression }}, 0) as bigint) as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}

{# A local clock hour (0-24) as reason text: "09:00". #}
{% macro clock_hour_for_reason(expression) -%}
    lpad(cast({{ expression }} as {{ dbt.type_string() }}), 2, '0') || ':00'
{%- endmacro %}

{# A count and its noun as reason text: "1 play", "3 plays". #}
{% macro count_with_noun(expression, singular, plural) -%}
    cast({{ expression }} as {{ dbt.type_string() }}) || case when {{ expression }} = 1 then ' {{ singular }}' else ' {{ plural }}' end
{%- endmacro %}

{# The day's value of a signal as reason text, with its noun when it has one. #}
{% macro signal_value_for_reason(signal) -%}
    {%- if signal.noun -%}
        {{ count_with_noun('cast(round(' ~ signal.metric ~ ', 0) as bigint)', signal.noun[0], signal.noun[1]) }}
    {%- else -%}
        {{ format_for_reason(signal.metric, signal.unit) }}
    {%- endif -%}
{%- endmacro %}

{# The reason sentence fragment of one signal, as a SQL string expression. #}
{% macro signal_reason_sql(signal) -%}
    {%- set parts = signal.label.replace('{value}', '\x00value\x00').replace('{usual}', '\x00usual\x00').split('\x00') -%}
    {%- set pieces = [] -%}
    {%- for part in parts if part != '' -%}
        {%- if part == 'value' -%}
            {%- do pieces.append('(' ~ signal_value_for_reason(signal) ~ ')') -%}
        {%- elif part == 'usual' -%}
            {%- do pieces.append(format_for_reason('usual_' ~ signal.metric, signal.unit)) -%}
        {%- else -%}
            {%- do pieces.append("'" ~ part.replace("'", "''") ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if signal.ceiling_var %}
    {#- A new account has no usual value to print: say which ceiling the day is over instead. #}
    {%- set value_text, usual_text = signal.label.split(' vs usual ') %}
    {%- set value_sql = "' || (" ~ signal_value_for_reason(signal) ~ ") || '" %}
    {%- set ceiling_sql = "' || " ~ format_for_reason(var(signal.ceiling_var) | string, signal.unit) ~ " || '" %}
    coalesce(
        {{ pieces | join(' || ') }},
        '{{ value_text.replace('{value}', value_sql) }} (no baseline yet; the human ceiling is {{ usual_text.replace('{usual}', ceiling_sql) }})'
    )
    {%- else %}
    {{ pieces | join(' || ') }}
    {%- endif %}
{%- endmacro %}
