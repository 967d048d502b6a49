"""The differentiable LP layer: gradcheck of every path, duals, finite differences of the
optimal value, cvxpylayers, batching and bad input."""
import math

import numpy as np
import pytest
import torch

from sparselp.layer import LPLayer, lp_solve

from lpcheck import highs, random_lp

F64 = torch.float64
BACKENDS = ["sparselp", "highs"]


def _req(t):
    return t.detach().clone().requires_grad_()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("output", ["x", "value"])
def test_gradcheck_dense_with_equalities_and_bounds(backend, output):
    p = random_lp(m=9, n=4, seed=1, eq=1, box=0.7)
    names = ["c", "A", "b", "A_eq", "b_eq", "lb", "ub"]
    inputs = tuple(_req(p[k]) for k in names)

    def f(*args):
        x, val = lp_solve(*args, backend=backend, return_value=True)
        return x if output == "x" else val
    # Full Jacobians against HiGHS; sparselp's slower solves get gradcheck's fast mode (a
    # random projection of the Jacobian, checked just as strictly).
    assert torch.autograd.gradcheck(f, inputs, fast_mode=backend == "sparselp")


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("output", ["x", "value"])
def test_gradcheck_sparse_values_only(layout, output):
    p = random_lp(m=12, n=4, seed=2)
    mask = torch.rand(12, 4, generator=torch.Generator().manual_seed(0)) < 0.7
    A = p["A"] * mask
    S = A.to_sparse() if layout == "coo" else A.to_sparse_csr()
    vals = _req(S.values())

    def f(vals, b):
        if layout == "coo":
            M = torch.sparse_coo_tensor(S.indices(), vals, S.shape, check_invariants=True)
        else:
            M = torch.sparse_csr_tensor(S.crow_indices(), S.col_indices(), vals, S.shape,
                                        check_invariants=True)
        x, val = lp_solve(p["c"], M, b, return_value=True)
        return x if output == "x" else val
    assert torch.autograd.gradcheck(f, (vals, _req(p["b"])), fast_mode=output == "x")


def test_sparse_gradient_lives_on_the_pattern():
    p = random_lp(m=12, n=4, seed=2)
    A = (p["A"] * (p["A"].abs() > 0.5)).to_sparse().requires_grad_()
    lp_solve(p["c"], A, p["b"], return_value=True)[1].backward()
    assert A.grad.layout == torch.sparse_coo
    assert torch.equal(A.grad.coalesce().indices(), A.detach().coalesce().indices())


def test_gradcheck_batched_sparse_3d_and_shared_matrix():
    p = random_lp(m=10, n=3, seed=3, batch=3)
    S = p["A"].to_sparse()
    vals = _req(S.values())

    def f(vals, b):
        M = torch.sparse_coo_tensor(S.indices(), vals, S.shape, check_invariants=True)
        return lp_solve(p["c"], M, b, return_value=True)[1]
    assert torch.autograd.gradcheck(f, (vals, _req(p["b"])), fast_mode=True)
    # One A shared by a batch of right-hand sides: its gradient sums over the batch.
    q = random_lp(m=10, n=3, seed=4)
    b = q["b"] + torch.rand(3, 10, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert torch.autograd.gradcheck(lambda A, b: lp_solve(q["c"], A, b), (_req(q["A"]), _req(b)),
                                    fast_mode=True)


def test_value_gradient_is_the_dual_and_matches_finite_differences():
    p = random_lp(m=10, n=4, seed=5)
    A, b = _req(p["A"]), _req(p["b"])
    x, v, val = lp_solve(p["c"], A, b, return_dual=True, return_value=True)
    val.backward()
    ref = highs(p["c"], p["A"], p["b"])
    np.testing.assert_allclose(v.numpy(), -ref.ineqlin.marginals, atol=1e-7)
    np.testing.assert_allclose(b.grad.numpy(), -v.numpy(), atol=1e-12)
    np.testing.assert_allclose(A.grad.numpy(), np.outer(v.numpy(), x.detach().numpy()),
                               atol=1e-12)
    # Central differences of the optimal value (HiGHS), one entry of b and of A each.
    h = 1e-5
    for idx in range(10):
        e = torch.zeros(10, dtype=F64)
        e[idx] = h
        fd = (highs(p["c"], p["A"], p["b"] + e).fun - highs(p["c"], p["A"], p["b"] - e).fun) / (2 * h)
        assert b.grad[idx].item() == pytest.approx(fd, abs=1e-6)
    i, j = int(torch.argmax(v)), 1
    E = torch.zeros(10, 4, dtype=F64)
    E[i, j] = h
    fd = (highs(p["c"], p["A"] + E, p["b"]).fun - highs(p["c"], p["A"] - E, p["b"]).fun) / (2 * h)
    assert A.grad[i, j].item() == pytest.approx(fd, rel=1e-5)


def test_dual_is_stationary_and_backends_agree():
    p = random_lp(m=9, n=4, seed=6, eq=1, box=0.7)
    res = {}
    for be in BACKENDS:
        x, v, val = lp_solve(**p, backend=be, return_dual=True, return_value=True)
        assert bool((v >= 0).all())
        res[be] = (x, v, val)
    np.testing.assert_allclose(res["sparselp"][0].detach(), res["highs"][0].detach(), atol=1e-7)
    np.testing.assert_allclose(res["sparselp"][1], res["highs"][1], atol=1e-7)


def test_plain_c_gradient_is_zero_for_x_and_x_for_the_value():
    p = random_lp(seed=7)
    c = _req(p["c"])
    x = lp_solve(c, p["A"], p["b"])
    (x * torch.arange(1.0, 5.0, dtype=F64)).sum().backward()
    assert torch.equal(c.grad, torch.zeros_like(c))
    c.grad = None
    x, val = lp_solve(c, p["A"], p["b"], return_value=True)
    val.backward()
    np.testing.assert_allclose(c.grad, x.detach(), atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_perturbed_c_gradient_matches_smoothed_closed_form(backend):
    # min c x s.t. -1 <= x <= 1: x* = -sign(c) and E[x*(c + sigma Z)] = 1 - 2 Phi(c / sigma),
    # whose derivative is -2 phi(c / sigma) / sigma. Monte Carlo with 400 samples: the
    # estimator's standard deviation is about 0.06 here, so the tolerance is 0.2.
    sigma, c0 = 1.0, 0.3
    c = torch.tensor([c0], dtype=F64, requires_grad=True)
    A = torch.tensor([[1.0], [-1.0]], dtype=F64)
    b = torch.ones(2, dtype=F64)
    x = lp_solve(c, A, b, c_grad="perturbed", sigma=sigma, n_samples=400, backend=backend,
                 generator=torch.Generator().manual_seed(0))
    assert float(x.detach()) == pytest.approx(-1.0)
    x.sum().backward()
    expected = -2 * math.exp(-0.5 * (c0 / sigma) ** 2) / math.sqrt(2 * math.pi) / sigma
    assert float(c.grad) == pytest.approx(expected, abs=0.2)


def test_perturbed_path_keeps_exact_b_gradients():
    p = random_lp(m=8, n=3, seed=8)
    g = torch.Generator().manual_seed(0)

    def f(A, b):
        return lp_solve(p["c"], A, b, c_grad="perturbed", n_samples=4, generator=g)
    assert torch.autograd.gradcheck(f, (_req(p["A"]), _req(p["b"])), fast_mode=True)


def test_unrolled_mode_gradcheck_and_is_close_to_exact():
    p = random_lp(m=8, n=3, seed=9)
    args = (_req(p["c"]), _req(p["A"]), _req(p["b"]))

    def f(c, A, b):
        return lp_solve(c, A, b, mode="unrolled", unroll_steps=30, unroll_eps=1e-4)
    assert torch.autograd.gradcheck(f, args)
    x_exact = lp_solve(p["c"], p["A"], p["b"])
    x_unrolled = f(*args)
    assert float((x_exact - x_unrolled).detach().abs().max()) < 1e-2


def test_matches_cvxpylayers():
    cp = pytest.importorskip("cvxpy", reason="cvxpy is not installed")
    cvl = pytest.importorskip("cvxpylayers.torch", reason="cvxpylayers is not installed")
    p = random_lp(m=10, n=3, seed=3)
    m, n = p["A"].shape
    x = cp.Variable(n)
    c, A, b = cp.Parameter(n), cp.Parameter((m, n)), cp.Parameter(m)
    layer = cvl.CvxpyLayer(cp.Problem(cp.Minimize(c @ x), [A @ x <= b]),
                           parameters=[c, A, b], variables=[x])
    w = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=F64)
    A1, b1 = _req(p["A"]), _req(p["b"])
    (layer(p["c"], A1, b1)[0] @ w).backward()
    A2, b2 = _req(p["A"]), _req(p["b"])
    (lp_solve(p["c"], A2, b2) @ w).backward()
    # cvxpylayers differentiates a conic solver's approximate solution: 1e-4 agreement.
    np.testing.assert_allclose(b2.grad, b1.grad, atol=1e-4)
    np.testing.assert_allclose(A2.grad, A1.grad, atol=1e-4)


def test_layer_module_batching():
    p = random_lp(m=10, n=3, seed=10, batch=3)
    layer = LPLayer()
    xb = layer(p["c"], p["A"], p["b"])
    assert xb.shape == (3, 3)
    for i in range(3):
        xi = layer(p["c"][i], p["A"][i], p["b"][i])
        assert xi.shape == (3,)
        np.testing.assert_allclose(xi, xb[i], atol=1e-8)
    assert "backend='highs'" in repr(LPLayer(backend="highs"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_infeasible_and_unbounded_raise(backend):
    A = torch.tensor([[1.0], [-1.0]], dtype=F64)
    with pytest.raises(RuntimeError, match=f"batch element 0 is INFEASIBLE \\({backend}\\)"):
        lp_solve(torch.tensor([1.0], dtype=F64), A, torch.tensor([-1.0, -1.0], dtype=F64),
                 backend=backend)
    with pytest.raises(RuntimeError, match=f"batch element 0 is UNBOUNDED \\({backend}\\)"):
        lp_solve(torch.tensor([1.0], dtype=F64), A[:1], torch.tensor([1.0], dtype=F64),
                 backend=backend)


def test_default_backend_names_the_failing_batch_element():
    # Element 1 of the batch is infeasible (x <= -1 and x >= 1); element 0 is fine.
    A = torch.tensor([[1.0], [-1.0]], dtype=F64)
    b = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=F64)
    with pytest.raises(RuntimeError, match="batch element 1 is INFEASIBLE"):
        lp_solve(torch.ones(2, 1, dtype=F64), A, b)


def test_float32_layer_matches_highs():
    """float32 forward and value gradient against HiGHS at the solver's float32 tol."""
    p = random_lp(m=12, n=4, seed=12, eq=1, box=0.7)
    q = {k: _req(v.float()) for k, v in p.items()}
    x, v, val = lp_solve(**q, return_dual=True, return_value=True)
    assert x.dtype == val.dtype == torch.float32
    ref = highs(**p)
    tol = 1e-5  # the solver's float32 default
    assert abs(float(val.detach()) - ref.fun) <= 10 * tol * max(1.0, abs(ref.fun))
    # c = -A^T v with a generic v: the optimum is a unique vertex and its dual is unique.
    np.testing.assert_allclose(x.detach().double().numpy(), ref.x,
                               atol=10 * tol * max(1.0, np.abs(ref.x).max()))
    np.testing.assert_allclose(v.double().numpy(), -ref.ineqlin.marginals,
                               atol=10 * tol * max(1.0, np.abs(ref.ineqlin.marginals).max()))
    val.backward()
    np.testing.assert_allclose(q["b"].grad.double().numpy(), ref.ineqlin.marginals,
                               atol=10 * tol * max(1.0, np.abs(ref.ineqlin.marginals).max()))


def test_bad_arguments():
    p = random_lp(seed=11)
    c, A, b = p["c"], p["A"], p["b"]
    with pytest.raises(ValueError, match="mode must be one of"):
        lp_solve(c, A, b, mode="newton")
    with pytest.raises(ValueError, match="c_grad must be one of"):
        lp_solve(c, A, b, c_grad="smooth")
    with pytest.raises(ValueError, match="backend must be one of"):
        lp_solve(c, A, b, backend="gurobi")
    with pytest.raises(ValueError, match=r"b must have shape \(10,\)"):
        lp_solve(c, A, b[:5])
    with pytest.raises(ValueError,
                       match="A must have as many columns as c has entries: expected 4 columns"):
        lp_solve(c, A[:, :3], b)
    with pytest.raises(ValueError, match="A and b must be given together"):
        lp_solve(c, A, None)
    with pytest.raises(ValueError, match="batch sizes .* disagree"):
        lp_solve(c.expand(2, 4), A, b.expand(3, 10))
    with pytest.raises(TypeError, match="A has dtype torch.float32"):
        lp_solve(c, A.float(), b)
    with pytest.raises(TypeError, match="A must be a torch tensor"):
        lp_solve(c, A.numpy(), b)
    with pytest.raises(TypeError, match="unknown keyword"):
        LPLayer(tol=1e-3)


def test_bounds_follow_c_dtype_and_batch_may_come_from_b():
    """Bounds in another dtype are cast to c's (as documented); a batch carried by b
    alone batches the output, and each element matches its own solve."""
    p = random_lp(seed=5, box=0.7)
    x = lp_solve(p["c"], p["A"], p["b"], lb=p["lb"].float(), ub=p["ub"].float())
    ref = highs(p["c"], p["A"], p["b"], bounds=list(zip(p["lb"].float().double().tolist(),
                                                         p["ub"].float().double().tolist())))
    np.testing.assert_allclose(x.numpy(), ref.x, atol=1e-6)
    b = torch.stack([p["b"], p["b"] + 0.5])
    xb = lp_solve(p["c"], p["A"], b)
    assert xb.shape == (2, 4)
    for i in range(2):
        np.testing.assert_allclose(xb[i].numpy(), lp_solve(p["c"], p["A"], b[i]).numpy(),
                                   atol=1e-8)
