"""Finite-element solver (DOLFINx) of the frequency-space error PDE (docs/theory.md §5, §7).

Strong form
-----------
Convention B, ξ in cycles per unit of x, t in PDE time.  On a box Ω ⊂ ℝ^d (d = 1, 2, 3)

    ∂_t û(ξ, t) = ∇_ξ·(D(ξ) ∇_ξ û) − c(ξ) û           in Ω × (0, T],
    D ∇_ξ û · n = 0                                    on ∂Ω (natural, zero flux),
    û(ξ, 0) = û₀(ξ) = −ĝ(ξ)                            (f₀ = 0).

For the Fourier-feature network the coefficients come from :func:`freqdyn.theory.derive.derive`
(κ²α included): c = κ²α ρ_w^sym (units 1/time) and D = κ²α σ_a² ρ_w^sym (units
ξ²/time).  The LFP models of :mod:`freqdyn.predict.lfp` use the same machinery with their own
c and D.  The coefficients are real, so Re û and Im û are solved separately (real PETSc).

Weak form
---------
Find û_h(t) ∈ V_h = {Lagrange P_k on a mesh of Ω} such that for every v ∈ V_h

    ∫_Ω ∂_t û_h v dξ + ∫_Ω (D ∇û_h·∇v + c û_h v) dξ = 0,

i.e. M U' + K U = 0 with M_ij = ∫φ_jφ_i and K_ij = ∫(D∇φ_j·∇φ_i + c φ_jφ_i).  The
coefficients enter only at the quadrature points (a quadrature-element function holding
the exact c and D there), so a piecewise-constant ρ_w is integrated exactly on a mesh
whose lines follow its jumps (the mesh lines are placed at the density's breakpoints).
û₀ is interpolated at the Lagrange nodes.

Mesh
----
Tensor-product mesh lines (intervals; triangles in 2D; tetrahedra in 3D) through the
breakpoints of ρ_w.  By default (``[fem] mesh = "graded"``) each axis is graded so
that the P_k interpolation error of û₀ and of û₀e^{−ct_end} is equidistributed (the
spectral peaks of û₀, std 1/(2πℓ) for a window of width ℓ, get the fine cells); the
cell count is then raised until that interpolation error is below ``tol``.
``mesh = "uniform"`` gives equal cells (used by the convergence tests).

Domain
------
* compact supp ρ_w (uniform, compact mixtures, expressions with a support box): Ω is
  the box holding the support of ρ_w^sym, cut at half a width beyond the ξ box
  (docs/theory.md §5: inside, the PDE with zero flux is exact; outside, ∂_t û = 0).  Cells on
  which c = D = 0 (gaps between bands) are left out of the mesh, so each band has its
  own zero-flux wall.  Case-grid points off the mesh keep û₀ exactly.
* otherwise Ω is the case's ξ box, widened (by at most half its width per side) to where
  ρ_w^sym has fallen below 1e-2 of its peak, so that the zero-flux wall sits where the
  flux D∇û is negligible.

Time integration
----------------
θ-scheme on the reported times: backward Euler (M + Δt K) U^{n+1} = M U^n, or
Crank–Nicolson (M + ½Δt K) U^{n+1} = (M − ½Δt K) U^n whose first ``startup`` steps are
each replaced by two backward-Euler half steps (Rannacher start-up: damps the stiff
modes excited by a rough û₀; the half-step matrix is the CN matrix, so one LU
factorisation serves both).  Each interval between reported times is cut into equal
steps ≤ Δt, so the reported times are hit exactly; a factorisation (MUMPS LU, KSP
preonly) is made once per distinct step size, i.e. once when the reported times are
multiples of Δt.  The a-priori bound sup_λ |e^{−λt} − R(λ)| (R the scheme's amplification
over the whole step sequence) bounds the time-discretisation error relative to ‖û₀‖_M;
it is stored per time as ``time_error_bound``.  ``[fem] dt`` gives uniform steps; by
default the steps grow with the reported times, Δt_j = r·t_j on the interval ending at
t_j (one factorisation per interval), with the largest r that keeps the bound ≤ ``tol``.

Modal solution
--------------
The generalised eigenproblem K v = λ M v (SLEPc, shift-and-invert Krylov–Schur near 0,
or dense LAPACK when most modes are needed) gives û_h(t) = Σ_k e^{−λ_k t}(v_k, û₀)_M v_k,
exact in time.  λ_k are the learning rates of the network's frequency modes: the
spectrum is exported (``modal_rate``, ``modal_weight`` over dim ``mode``).  Modes are
added until the discarded part r of û₀ satisfies e^{−λ_N t}‖r‖_M ≤ tol·‖û_h(t)‖_M at
every reported t > 0 (t = 0 reports û₀ itself); that bound is ``modal_truncation_error``.

Output
------
û_h is evaluated at the case-grid points (bounding-box tree search on each process,
the lowest rank holding a point evaluates it, values gathered), so one or several
MPI processes give the same numbers.

Modules: :mod:`.problem` (the PDE, numpy only), :mod:`.grading` (mesh lines),
:mod:`.stack` (the DOLFINx/PETSc imports), :mod:`.mesh`, :mod:`.discretisation`
(assembly, point evaluation), :mod:`.stepping` (step plans and their error bound),
:mod:`.theta` (θ-scheme marching), :mod:`.modal`,
:mod:`.settings` (``[fem]``) and :mod:`.solver` (the driver).  Importing this package
does not import DOLFINx; the modules that need it do.
"""
