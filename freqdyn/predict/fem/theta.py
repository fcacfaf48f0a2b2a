"""θ-scheme marching (backward Euler, Crank–Nicolson with Rannacher start-up) by MUMPS LU."""

from __future__ import annotations

from freqdyn.predict.fem.discretisation import Discretisation, lu_solver
from freqdyn.predict.fem.stack import PETSc
from freqdyn.predict.fem.stepping import StepPlan, progress_bar


def integrate_theta(disc: Discretisation, plan: StepPlan, observe, progress: bool = True):
    """March Re and Im of û₀ through ``plan``; ``observe(j, re, im)`` at each reported time."""
    comm = disc.comm
    state = [u.copy() for u in disc.u0]
    rhs = state[0].duplicate()
    solvers: dict[float, tuple[PETSc.KSP, PETSc.Mat]] = {}

    def operators(dt):
        key = float(f"{dt:.12e}")
        if key not in solvers:
            theta = 1.0 if plan.scheme == "be" else 0.5
            A = disc.M.copy()
            A.axpy(theta * dt, disc.K)
            B = disc.M.copy()
            if plan.scheme == "cn":
                B.axpy(-0.5 * dt, disc.K)
            solvers[key] = (lu_solver(A, comm), B)
        return solvers[key]

    bar = progress_bar(plan.steps, f"{plan.scheme} steps", comm) if progress else None
    first, done = True, 0
    for j, (dt, n) in enumerate(plan.intervals):
        if n:
            ksp, B = operators(dt)
            half = min(plan.startup, n) if (first and plan.scheme == "cn") else 0
            for k in range(n):
                for u in state:
                    if k < half:  # two backward-Euler half steps: (M + ½Δt K) U' = M U
                        for _ in range(2):
                            disc.M.mult(u, rhs)
                            ksp.solve(rhs, u)
                    else:
                        B.mult(u, rhs)
                        ksp.solve(rhs, u)
                done += 1
                if bar is not None:
                    bar.update(done)
            first = False
        observe(j, state[0], state[1])
    if bar is not None:
        bar.close()
    return {"factorisations": len(solvers)}
