"""A published table reproduced in parts, and its document.

- ``protocol``: the protocol file (``docs/reproductions/<name>.yaml``): the table's blocks (each an objective
  on validation that chooses the configurations), its parts (a study each, or one study per seed), rows,
  claims and panels;
- ``parts``: one part's committed tables (``<data>/<part>/``, or ``<data>/<part>/s<seed>/`` per seed), the
  configuration each block chooses and the final runs that retrained it, the part's progress and timing;
- ``machine``: where a part ran, from its ``study.json``;
- ``verdicts``: each row's numbers and how they compare with the paper's, the paper's claims;
- ``panels``: the selective-classification panel, selection noise, where the differences come from;
- ``document``: the Markdown document, computed from the committed tables alone.
"""
