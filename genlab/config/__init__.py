"""Config composition (:mod:`.compose`), typed schemas (:mod:`.schema`, :mod:`.sections`) and the resolved run
(:mod:`.run`). Import from the submodules: this package stays import-light."""
