"""The query language itself, known to both backends: its words (:mod:`.lexer`), its fields
(:mod:`.fields`), its syntax tree and parser (:mod:`.syntax`), its globs and regexes
(:mod:`.patterns`) and Tab completion (:mod:`.completion`, the values proposed coming from a
backend). Its two compilers live with their backends: the numpy evaluator
(:mod:`audittui.index.evaluate`) and SQL (:mod:`audittui.clickhouse.sql`). Imports only
:mod:`audittui.ingest`."""
