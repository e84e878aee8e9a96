"""Flow tests (``mobctl test``): suite files of cases, each run in a store of its own and
checked against what it expects of its run.

- model: the suite file format (``*.test.toml``); loading: finding, reading and checking
  suite files (located diagnostics), ``-k`` selection (keywords)
- runner: running cases concurrently, each in a temporary store; record: what a run left
  (snapshot and events), as expectations read it; expectations: checking them
- update: ``--update`` (rewrites failing ``eq`` output assertions, comments kept)

A layer between the CLI and the library: it runs flows only through :mod:`mobctl.api`, and
gets its stores from the caller (the CLI opens them), so it never names a backend.
"""
