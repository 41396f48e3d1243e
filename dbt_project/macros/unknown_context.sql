{#-
  What staging writes for a play's platform or country when the source names none, or names the
  region ZZ (the code for an unknown region, which Spotify writes for plays it could not place, such
  as offline ones). A device or place never named is never a new one, nor one more in a day.
-#}
{% macro unknown_context() -%}
    'unknown'
{%- endmacro %}
