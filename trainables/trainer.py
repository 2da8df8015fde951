"""One seed's training: data, model, loss, optimiser and schedule from a :class:`TrialConfig`, trained epoch by
epoch, checkpointed and evaluated at the end. Imports no Ray/MLflow."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from analysis.core.tables import target_matrix
from analysis.metrics.evaluation import (
    Outputs,
    epoch_metrics,
    final_results,
    per_sample_outputs,
    risk_coverage_curves,
)
from trainables.config import TrialConfig
from trainables.cpu_memory import keep_freed_memory
from trainables.data import get_dataset_info, load_dataset, make_splits
from trainables.data.base import TensorDataset
from trainables.data.batches import Normalizer, eval_batches, train_batches
from trainables.losses import build_loss
from trainables.models import build_model, get_model_info


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or inf; the trial ends with status ``diverged``."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' is not allowed here: no CUDA device is visible; allowed: auto, cpu")
    return torch.device(name)


def glorot_init(model: torch.nn.Module) -> None:
    """Glorot-uniform weights and zero biases in every linear and convolutional layer."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class FinalEvaluation:
    metrics: dict[str, float]
    per_sample: dict[str, np.ndarray]
    # K×K, saved as .npy + heatmap: "<loss>_targets" (LS++ C, LLS Q), "centre_distances" (representation)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    curves: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Builds data, model, loss, optimiser and schedule from a :class:`TrialConfig` and trains epoch by epoch.

    ``train_epoch()`` returns that epoch's metrics (namespaced keys); ``final_evaluation()`` the full
    evaluation on validation and test. ``state_dict()``/``load_state_dict()`` make a checkpoint that resumes
    bit-for-bit on CPU.
    """

    def __init__(self, config: TrialConfig, device: torch.device | str | None = None) -> None:
        self.config = cfg = config
        self.device = torch.device(device) if device is not None else resolve_device(cfg.device)
        seed_everything(cfg.seed)
        self.info = get_dataset_info(cfg.dataset)
        raw = load_dataset(cfg.dataset, cfg.data_dir, cfg.download)
        splits = make_splits(raw, cfg.val_fraction, cfg.split_seed, cfg.subset, resample=cfg.resample == "per_seed")
        train = splits.train
        if cfg.train_on == "train_val":
            train = TensorDataset(torch.cat([train.images, splits.val.images]),
                                  torch.cat([train.labels, splits.val.labels]))
        self.train_data = train.to(self.device)
        self.val_data = splits.val.to(self.device)
        self.test_data = splits.test.to(self.device)
        self.normalize = (Normalizer.pixel_mean(self.train_data.images) if cfg.normalize == "pixel_mean"
                          else Normalizer(self.info.mean, self.info.std, self.device))
        k = self.info.num_classes
        self.channels_last = self.device.type == "cuda" and get_model_info(cfg.model).convolutional
        self.model = build_model(cfg.model, self.info.in_chans, k, self.info.image_size)
        if cfg.init == "glorot":
            glorot_init(self.model)
        self.model = self.model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn = build_loss(cfg.loss, k, **cfg.loss_params).to(self.device)
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        self.optimizer = self._make_optimizer()
        self.steps_per_epoch = max(1, len(self.train_data) // cfg.batch_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.epoch = 0  # epochs completed
        self.amp = cfg.amp and (self.device.type == "cuda" or cfg.amp_cpu)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed batch shapes: pick the fastest conv kernels once
        else:
            keep_freed_memory()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        # Learnable targets (LS++ C, LLS Q) train with the network's learning rate and weight decay.
        params = list(self.model.parameters()) + list(self.loss_fn.parameters())
        if cfg.optimizer == "sgd":
            # fused: one pass over each parameter instead of four. Its SIMD bulk is the default step bit for bit;
            # a tensor's last numel % width elements may round a few ulps apart (scalar code). Kept off with weight
            # decay, as when it was introduced, so those studies' numbers stay as they were.
            fused = self.device.type == "cpu" and cfg.weight_decay == 0
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                   nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay,
                                   fused=fused or None)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _lr_factor(self, step: int) -> float:
        cfg = self.config
        decay = 1.0 / (1.0 + cfg.lr_decay * step)
        if cfg.schedule == "cosine":
            total = cfg.epochs * self.steps_per_epoch
            return decay * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        if cfg.schedule == "step":
            return decay * cfg.step_gamma ** (step // (cfg.step_size * self.steps_per_epoch))
        if cfg.schedule == "multistep":
            passed = sum(step >= m * self.steps_per_epoch for m in cfg.milestones)
            return decay * cfg.step_gamma ** passed
        return decay

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalize(images)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return self.forward(x)

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    def train_epoch(self) -> dict[str, float]:
        cfg = self.config
        self.model.train()
        self.loss_fn.train()
        self.loss_fn.on_epoch_start(self.epoch, cfg.epochs)
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        augment = cfg.augment
        for images, labels, _ in train_batches(
            self.train_data, cfg.batch_size, self.gen,
            crop_padding=self.info.crop_padding if augment else 0, hflip=self.info.hflip and augment,
        ):
            logits = self._logits(images)
            loss = self.loss_fn(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.detach() * len(labels)
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += len(labels)
        self.loss_fn.on_epoch_end()
        train_loss = loss_sum.item() / max(seen, 1)  # one device sync per epoch
        self.epoch += 1
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"train/loss became {train_loss} in epoch {self.epoch}")
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        val = self.predict(self.val_data, features=False)
        # the epoch's last steps can blow up the weights after their loss was recorded
        if not torch.isfinite(val.logits).all():
            raise TrainingDiverged(f"val logits became NaN or inf after epoch {self.epoch}")
        metrics = {f"val/{k}": v for k, v in epoch_metrics(val.logits, val.labels).items()}
        metrics.update({
            "epoch": self.epoch,
            "train/loss": train_loss,
            "train/acc": correct.item() / max(seen, 1),
            "train/lr": self.optimizer.param_groups[0]["lr"],
            "time/train_s": train_s,
            "time/eval_s": time.perf_counter() - start,
            "time/images_per_s": seen / train_s if train_s > 0 else float("nan"),
        })
        return metrics

    @torch.inference_mode()
    def predict(self, data: TensorDataset, features: bool = True) -> Outputs:
        self.model.eval()
        self.loss_fn.eval()
        logits, feats = [], []
        for images, _ in eval_batches(data, self.config.eval_batch_size):
            x = self.normalize(images)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                if features:
                    f = self.model.features(x)
                    feats.append(f.float().cpu())
                    logits.append(self.model.head(f).float().cpu())
                else:
                    logits.append(self.forward(x).float().cpu())
        return Outputs(
            logits=torch.cat(logits), labels=data.labels.cpu(), features=torch.cat(feats) if features else None
        )

    def final_evaluation(self) -> FinalEvaluation:
        cfg = self.config
        want_features = cfg.representation or cfg.probe
        val = self.predict(self.val_data, features=False)
        test = self.predict(self.test_data, features=want_features)
        train = None
        if cfg.probe:
            n = min(len(self.train_data), cfg.probe_max_train)
            train = self.predict(self.train_data.subset(torch.arange(n, device=self.device)))
        shifted = None
        if cfg.shift_severity:
            from trainables.data.corruptions import corrupt

            images = corrupt(self.test_data.images, severity=cfg.shift_severity, seed=cfg.split_seed)
            shifted = self.predict(TensorDataset(images, self.test_data.labels), features=False)
        transfer_train = transfer_test = None
        if cfg.transfer_dataset and cfg.probe:
            transfer_train, transfer_test = self._transfer_outputs(cfg.transfer_dataset)
        metrics, matrices = final_results(val, test, train=train, shifted_test=shifted,
                                          transfer_train=transfer_train, transfer_test=transfer_test,
                                          representation=cfg.representation)
        matrix = self.loss_fn.target_matrix()
        if matrix is not None:
            matrices[target_matrix(cfg.loss)] = matrix.detach().float().cpu().numpy()
        p = metrics.get("test/lognorm_p")
        return FinalEvaluation(
            metrics=metrics,
            per_sample=per_sample_outputs(test, p),
            matrices=matrices,
            class_names=self.info.class_names,
            curves=risk_coverage_curves(test, p),
        )

    def _transfer_outputs(self, name: str) -> tuple[Outputs, Outputs]:
        """Features of the transfer dataset. ``data_dir`` names the main dataset's files, so the transfer
        dataset is found where its registry entry says (its environment variable, e.g.
        ``SMOOTHSTUDY_FASHION_MNIST_DIR``, else its default directory) unless it is the main dataset itself;
        ``download`` applies to both."""
        cfg = self.config
        info = get_dataset_info(name)
        if (info.in_chans, info.image_size) != (self.info.in_chans, self.info.image_size):
            raise ValueError(
                f"transfer_dataset={name!r} has {info.in_chans}×{info.image_size}² images, the model takes "
                f"{self.info.in_chans}×{self.info.image_size}²; pick a dataset of the same image shape"
            )
        raw = load_dataset(name, cfg.data_dir if name == cfg.dataset else None, cfg.download)
        # a seeded sample, not the first images: a training set stored sorted by label would give few classes
        gen = torch.Generator().manual_seed(cfg.split_seed)
        keep = torch.randperm(len(raw.train), generator=gen)[: cfg.probe_max_train]
        return (self.predict(raw.train.subset(keep).to(self.device)),
                self.predict(raw.test.to(self.device)))

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "gen": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": _numpy_rng_state(),  # plain data: loadable with weights_only=True
            "python_rng": list(random.getstate()[1]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        keys, pos, has_gauss, gauss = state["numpy_rng"]
        np.random.set_state(("MT19937", np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
        random.setstate((3, tuple(state["python_rng"]), None))


def _numpy_rng_state() -> list:
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    return [keys.tolist(), int(pos), int(has_gauss), float(gauss)]
