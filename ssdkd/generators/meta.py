"""Meta-learning steps of Fast-DFKD: first-order MAML, Reptile and layer re-initialisation.

Fast-DFKD meta-learns the generator so that a few inner steps from its weights θ give a
good new batch. Each round clones the meta generator into a *fast* copy θ', runs the
inner optimiser on θ', and then moves θ:

- first-order MAML: ∇θ ≈ Σ_k ∇θ' L(θ'_k), the sum of the fast copy's gradients over the
  inner steps (second-order terms dropped) — call :func:`fomaml_accumulate` after every
  inner ``backward``, then step the meta optimiser;
- Reptile: ∇θ := θ − θ'_N, so a gradient-descent step moves θ towards the adapted
  weights — call :func:`reptile_gradient` once after the inner loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["fomaml_accumulate", "reinitialize", "reptile_gradient"]


def _paired_parameters(meta: nn.Module, fast: nn.Module) -> list[tuple[nn.Parameter, nn.Parameter]]:
    meta_params = dict(meta.named_parameters())
    fast_params = dict(fast.named_parameters())
    if meta_params.keys() != fast_params.keys():
        raise ValueError(
            "Expected `meta` and `fast` to have the same parameters (a copy of one another), "
            f"got {sorted(meta_params)} and {sorted(fast_params)}"
        )
    pairs = []
    for name, meta_param in meta_params.items():
        fast_param = fast_params[name]
        if meta_param.shape != fast_param.shape:
            raise ValueError(
                f"Expected parameter {name!r} to have the same shape in `meta` and `fast`, "
                f"got {tuple(meta_param.shape)} and {tuple(fast_param.shape)}"
            )
        pairs.append((meta_param, fast_param))
    return pairs


def fomaml_accumulate(meta: nn.Module, fast: nn.Module) -> None:
    """Add the fast copy's current gradients into the meta module's ``.grad``.

    ``meta.grad ← meta.grad + fast.grad`` for every parameter (a missing ``meta.grad``
    starts at zero; parameters of ``fast`` without a gradient are skipped). Call it after
    each inner ``backward`` and before the inner optimiser clears the gradients.

    Args:
        meta: The meta generator (θ).
        fast: Its adapted copy (θ'), with gradients from the latest backward pass.

    Examples:
        >>> import copy
        >>> meta = nn.Linear(2, 1)
        >>> fast = copy.deepcopy(meta)
        >>> fast(torch.ones(1, 2)).sum().backward()
        >>> fomaml_accumulate(meta, fast)
        >>> fomaml_accumulate(meta, fast)
        >>> meta.weight.grad
        tensor([[2., 2.]])
    """
    for meta_param, fast_param in _paired_parameters(meta, fast):
        if fast_param.grad is None:
            continue
        grad = fast_param.grad.detach().to(meta_param.device, meta_param.dtype)
        if meta_param.grad is None:
            meta_param.grad = grad.clone()
        else:
            meta_param.grad.add_(grad)


def reptile_gradient(meta: nn.Module, fast: nn.Module, scale: float = 1.0) -> None:
    """Set ``meta.grad = scale · (θ_meta − θ_fast)`` for every parameter (Reptile).

    A plain SGD step at learning rate η then gives θ ← θ − η·scale·(θ − θ'), i.e. moves
    the meta weights a fraction η·scale of the way towards the adapted ones. Existing
    meta gradients are overwritten.

    Args:
        meta: The meta generator (θ).
        fast: Its adapted copy (θ') after the inner steps.
        scale: Multiplier of the difference.

    Examples:
        >>> meta, fast = nn.Linear(1, 1), nn.Linear(1, 1)
        >>> reptile_gradient(meta, fast, scale=2.0)
        >>> torch.allclose(meta.weight.grad, 2 * (meta.weight - fast.weight).detach())
        True
    """
    for meta_param, fast_param in _paired_parameters(meta, fast):
        difference = meta_param.detach() - fast_param.detach().to(meta_param.device)
        meta_param.grad = (scale * difference).to(meta_param.dtype)


def reinitialize(
    module: nn.Module, names: Sequence[str], *, generator: torch.Generator | None = None
) -> None:
    """Re-initialise the named submodules (Fast-DFKD resets early layers for diversity).

    Every module inside each named submodule that defines ``reset_parameters`` gets it
    called; BatchNorm's also resets its running statistics.

    Args:
        module: The network, e.g. a :class:`DCGANGenerator`.
        names: Dotted submodule names as in ``module.named_modules()`` (e.g.
            ``"project"``, ``"blocks.2"``).
        generator: If given, the new weights are drawn from a seed taken from it, so the
            result is reproducible and the global random state is left untouched;
            otherwise the global generator is used, as ``reset_parameters`` does.

    Raises:
        TypeError: ``names`` is a single string instead of a sequence of names.
        ValueError: A name is not a submodule of ``module``; the message lists the known
            names and nothing has been changed.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        >>> net[1].running_mean.fill_(3.0)
        tensor([3., 3.])
        >>> reinitialize(net, ["1"], generator=torch.Generator().manual_seed(0))
        >>> net[1].running_mean
        tensor([0., 0.])
    """
    if isinstance(names, str):
        raise TypeError(f"Expected `names` to be a sequence of names, got the string {names!r}")
    known = dict(module.named_modules())
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = ", ".join(repr(name) for name in known if name)
        raise ValueError(
            f"Expected `names` to name submodules of the module, got unknown {unknown}; "
            f"known: {listed}"
        )

    def reset_all() -> None:
        for name in names:
            for child in known[name].modules():
                reset = getattr(child, "reset_parameters", None)
                if callable(reset):
                    reset()

    if generator is None:
        reset_all()
        return
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        reset_all()
