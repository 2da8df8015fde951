"""Loss registry. Importing this package registers every method module in it (one file per method)."""

import pkgutil
from importlib import import_module

from trainables.losses.base import (
    LOSSES,
    LossInfo,
    SmoothingLoss,
    build_loss,
    check_loss_hparams,
    get_loss_info,
    list_losses,
    loss_hparams,
    register_loss,
)

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "base":
        import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "LOSSES", "LossInfo", "SmoothingLoss", "build_loss", "check_loss_hparams", "get_loss_info",
    "list_losses", "loss_hparams", "register_loss",
]
