"""How many search trials each method gets under ``search.strategy: per_method``.

A method with nothing to search gets exactly one trial (more would only be seed repeats that hand it a
best-of-n advantage). The other methods share the rest of ``num_samples`` evenly; the remainder goes one
trial each to the first methods in study-file order (round-robin). With a sampler that enumerates (``grid``) a
method never gets more trials than its grid has configurations; what it cannot use goes round-robin to the others.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budgets:
    trials: dict[str, int]  # method -> search trials, in study-file order
    fixed: tuple[str, ...]  # methods without searchable hyperparameters (one trial each)
    remainder_to: tuple[str, ...]  # methods that got one trial more than the even share

    @property
    def total(self) -> int:
        return sum(self.trials.values())

    def describe(self) -> str:
        """One line: the split and how it was made."""
        per = ", ".join(f"{m} {n}" for m, n in self.trials.items())
        how = []
        if self.fixed:
            how.append(f"{', '.join(self.fixed)}: 1 trial{' each' if len(self.fixed) > 1 else ''}, nothing to search")
        if len(self.trials) > len(self.fixed):
            how.append("the rest split evenly" + (f", remainder round-robin: +1 for {', '.join(self.remainder_to)}"
                                                  if self.remainder_to else ""))
        return f"per method: {per}" + (f" ({'; '.join(how)})" if how else "")


def split_budget(sizes: dict[str, int | None], num_samples: int, capped: bool) -> Budgets:
    """``sizes``: configurations per method (1 = nothing to search); ``capped``: a method gets at most its
    number of configurations (grid sampler). Raises ``ValueError`` when a method would get no trial."""
    if num_samples < len(sizes):
        raise ValueError(f"search.num_samples={num_samples} is below the {len(sizes)} methods: with "
                         f"search.strategy=per_method every method needs a trial; allowed: at least {len(sizes)}")
    fixed = tuple(m for m, n in sizes.items() if n == 1)
    trials = {m: 1 if m in fixed else 0 for m in sizes}
    searched = [m for m in sizes if m not in fixed]
    left = num_samples - len(fixed)
    if searched:
        share = left // len(searched)
        for m in searched:
            cap = sizes[m] if capped and sizes[m] is not None else None
            trials[m] = share if cap is None else min(share, cap)
        left -= sum(trials[m] for m in searched)
    extra: list[str] = []
    while left > 0:
        open_ = [m for m in searched if not (capped and sizes[m] is not None and trials[m] >= sizes[m])]
        if not open_:
            break  # every grid is covered: the rest of num_samples is not used
        for m in open_:
            if left == 0:
                break
            trials[m] += 1
            extra.append(m)
            left -= 1
    return Budgets(trials, fixed, tuple(dict.fromkeys(extra)))


def interleave(budgets: Budgets) -> list[str]:
    """The method of each search trial in the order they are asked for: round-robin over the methods with
    trials left, so every method starts early and a study stopped half-way has searched all of them."""
    left = dict(budgets.trials)
    order: list[str] = []
    while any(left.values()):
        for m in left:
            if left[m]:
                order.append(m)
                left[m] -= 1
    return order
