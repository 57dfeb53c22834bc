{#-
  `materialized: mesh_product`, declared by a domain's dbt project for its product models.

  On DuckDB, for a model the platform's step names in MESH_PRODUCT_MODELS, the product is built
  straight into the Parquet file the platform audits and then publishes (renames into the product
  store), so its rows are written once: the relation is a view over that file, in the step's
  staging folder MESH_PRODUCT_STAGING. Everywhere else it is dbt's own `table`: on another
  warehouse, for a model with constraints (its table enforces them), for a model the platform does
  not publish, and when dbt is run by hand.
-#}
{% materialization mesh_product, default %}
  {{ return(materialization_table_default()) }}
{% endmaterialization %}

{% materialization mesh_product, adapter="duckdb" %}
  {%- set products = env_var('MESH_PRODUCT_MODELS', '').split(',') -%}
  {%- set constrained = model['constraints'] or (model['columns'].values() | selectattr('constraints') | list) -%}
  {%- if model['name'] not in products or constrained or not env_var('MESH_PRODUCT_STAGING', '') -%}
    {{ return(materialization_table_duckdb()) }}
  {%- endif -%}
  {%- set location = env_var('MESH_PRODUCT_STAGING') ~ '/' ~ model['name'] ~ '.parquet' -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set query = sql -%}
  {%- if config.get('contract').enforced -%}
    {{ get_assert_columns_equivalent(sql) }}
    {%- set query = get_select_subquery(sql) -%}
  {%- endif -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('write') -%}
    copy (
      {{ query }}
    ) to '{{ location }}' ({{ env_var('MESH_PARQUET_OPTIONS') }})
  {%- endcall %}
  {% if existing_relation is not none and existing_relation.type != 'view' %}
    {{ adapter.drop_relation(existing_relation) }}
  {% endif %}
  {% call statement('main') -%}
    create or replace view {{ target_relation }} as select * from read_parquet('{{ location }}')
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
