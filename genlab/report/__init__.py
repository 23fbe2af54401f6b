"""``genlab report``: compare runs and sweeps offline, from their run directories alone.

One module per job: :mod:`~genlab.report.runs` finds run directories and reads their records,
:mod:`~genlab.report.scalars` reads the logged curves, :mod:`~genlab.report.leaderboard` ranks the runs,
:mod:`~genlab.report.plots` and :mod:`~genlab.report.sweeps` draw the figures, :mod:`~genlab.report.page`
writes the HTML page, the CSV and the markdown, and :mod:`~genlab.commands.report` is the CLI entry.
Everything read from a run directory is treated as data: nothing named in a file is imported or instantiated.
"""
