"""Grokking with freqdyn's machinery: four studies and the standard measures.

One experiment file per study (``validation/grokking/*.toml``) run by ``freqdyn grok``:

* :mod:`.experiment`   the experiment file (settings, paper size, seeds, claim rule)
* :mod:`.runner`       runs a file; writes result.nc, figures and summary.json
* :mod:`.claim`        the claim rule over the summary
* :mod:`.loop`         the one training loop (per-step logging, checkpoints, resume)

and the studies themselves (frequency view, lazy to rich, algorithmic data, loss-curve
spectra, robustness).  Loss-curve spectra (frequencies over *training time*) live in
:mod:`.loss_spectrum`, apart from the input-space frequencies of :mod:`freqdyn.nudft`.
"""
