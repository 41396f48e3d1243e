{#
  Spark (`--target spark`): register the raw tables the sources read, each a folder of Parquet
  files under `path` named as the table (what warehouse.store.export_raw_tables writes from a
  DuckDB warehouse), in the catalog's `raw` database:

      dbt run-operation register_raw_parquet_tables --args "{path: /data/raw}" --target spark

  A table registered before is replaced: the folder is the data.
#}
{% macro register_raw_parquet_tables(path) %}
    {% do run_query('create database if not exists raw') %}
    {% for source in graph.sources.values() if source.source_name == 'raw' %}
        {% set location = path ~ '/' ~ source.name %}
        {% do run_query('drop table if exists raw.' ~ source.name) %}
        {% do run_query("create table raw." ~ source.name ~ " using parquet location '" ~ location ~ "'") %}
        {{ log('raw.' ~ source.name ~ ' <- ' ~ location, info=true) }}
    {% endfor %}
{% endmacro %}
