"""The reports of a run, all read from the typed `RunResults` (never from raw JSON).

- `console`: `format_summary(results)`, and the `--monitor` listeners (`make_monitor`);
- `html`: `render_html(results)`, one self-contained page (Jinja2 templates in `templates/`,
  laid out from `page`, with charts from `timeline` -> `charts` -> `svg`);
- `junit`: `render_junit(results)`;
- `files`: `write_reports(results, html_path, junit_path)`, the one module that writes;
- `_format`: the formatters they share.

Nothing is imported here, so `import nimbus_scenarios.report.console` does not load Jinja2.
The modules import downwards only: `_format` <- `timeline` <- `charts`/`page` <- `html`,
`junit` <- `files`; `console` needs only `_format` (and `scaling_words`, below `report`).
"""
