"""Grokking with freqdyn's machinery: four studies and the standard measures.

One experiment file per study (``validation/grokking/*.toml``), run by ``freqdyn grok``.

Infrastructure
    :mod:`.experiment`    the experiment file (settings, paper size, seeds, claim rule)
    :mod:`.runner`        runs a file; writes result.nc, figures and summary.json
    :mod:`.claim`         the claim rule, evaluated over the summary
    :mod:`.loop`          the one training loop (per-step logging, checkpoints, resume)
    :mod:`.sweep`         grids of independent runs through Dask (local pool or Slurm)

Frequency view (Zhou, Zhang, Xu) and lazy to rich (Kumar et al.)
    :mod:`.frequency_view`  sin 6x aliasing, parity, images; spectra by :mod:`freqdyn.grok.nudft`
    :mod:`.images`          MNIST IDX reader and the scikit-learn digits
    :mod:`.committee`       the committee machine, its exact loss decomposition and kernels
    :mod:`.lazy_rich`       toy model, α sweep, (α, ε) phase diagram, modular MLP

Algorithmic data (Power et al., Nanda et al.), loss-curve spectra, robustness
    :mod:`.modular`         operation tables mod p and on S5
    :mod:`.models`          Nanda transformer, Power decoder, pair MLP
    :mod:`.algorithmic`     modular training, phase times t1–t4, the t4(r) power law
    :mod:`.progress`        Nanda's progress measures (key frequencies, restricted loss)
    :mod:`.loss_spectrum`   spectra over *training time* and the predictor evaluation
    :mod:`.landscape`       Hessian extremes, trajectory PCA, filter-normalised slices
    :mod:`.robustness`      perturbed training, abelian tests, matrix entropy measures

Input-space frequencies (:mod:`freqdyn.grok.nudft`) and frequencies over training time
(:mod:`.loss_spectrum`) are different things and live apart.
"""
