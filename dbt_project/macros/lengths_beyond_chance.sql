{#-
  Different play lengths (whole seconds) against the lengths as many tracks have by chance, at most
  1: n tracks whose lengths spread over S seconds (var play_length_spread_seconds) have
  S (1 - exp(-n / S)) different lengths, so past a hundred tracks people's lengths coincide, while
  a script cutting every play to a few lengths stays low whatever the tracks. Null without tracks.
-#}
{% macro lengths_beyond_chance(distinct_lengths, distinct_tracks) -%}
    round(
        least(
            {{ distinct_lengths }} / nullif(
                {{ var('play_length_spread_seconds') }}
                * (1 - exp(-{{ distinct_tracks }} / {{ var('play_length_spread_seconds') }})),
                0
            ),
            1.0
        ),
        6
    )
{%- endmacro %}
