"""Training a tessera-compiled GDN causal LM with PyTorch (seed 002, "Integration with Existing Frameworks"):
`TesseraGDNPyTorchWrapper` (an nn.Module whose Parameters mirror the tessera model's) and
`GDNPyTorchTrainer` (optimizer, LR scheduler, gradient accumulation, clipping, the delta L1 term, and
autocast + GradScaler on CUDA).

    lm = tessera.gdn.CompiledGDNLM(config, seed=0)
    model = TesseraGDNPyTorchWrapper(lm)                  # Parameters tessera_<name>, initialised from lm
    trainer = GDNPyTorchTrainer(model, torch.optim.AdamW(model.parameters(), lr=1e-2))
    out = trainer.training_step({"input_ids": x, "attention_mask": None, "labels": y})

The forward is `tessera.integrations.torch.op(causal_lm_forward)` with the registered Parameters as its
inputs, so `loss.backward()` fills their `.grad` with gradients from tessera's compiled backward graph and
any torch optimizer can train them. Differences from the seed (docs/integrations.md says why): Parameters
start from the tessera model's values (the seed registers zeros and never syncs them in), parameter names
replace the dots of tessera names by "_", `should_update_parameters()` is a real micro-batch counter,
GradScaler / autocast are enabled only for CUDA parameters, and the step result also says whether the
parameters were updated and the gradient norm before clipping."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import TesseraError
from ..gdn.compiled_lm import padding_bias
from ..gdn.model import causal_lm_forward_padded
from . import torch as tst


def _shared_op(tessera_model):
    """One torch op per model function and config (tst.op returns the same op for the same arguments)."""
    function, static = tessera_model.functional()
    return tst.op(function, **static)


def torch_parameter_name(tessera_name: str) -> str:
    """`tessera_<name>` with the dots (nn.Module forbids them in parameter names) replaced by "_"."""
    return "tessera_" + tessera_name.replace(".", "_")


class TesseraGDNPyTorchWrapper(nn.Module):
    """An nn.Module around a tessera model that has `get_parameters()`, `update_parameters()` and
    `functional()` (tessera.gdn.CompiledGDNLM): its parameters become torch Parameters named
    `tessera_<name>` (dots → "_"), initialised from the model's values; forward runs the model's function as
    a tessera torch op over those Parameters. `sync_parameters_to_tessera()` / `sync_parameters_from_tessera()`
    copy values between the two sides (they are separate memory)."""

    def __init__(self, tessera_model, input_names=("input_ids", "attention_mask"), output_names=("logits",)):
        super().__init__()
        for method in ("get_parameters", "update_parameters", "functional"):
            if not callable(getattr(tessera_model, method, None)):
                raise TesseraError(f"TesseraGDNPyTorchWrapper: the tessera model ({type(tessera_model).__name__}) "
                                   f"has no {method}() (use tessera.gdn.CompiledGDNLM)")
        unknown = [n for n in input_names if n not in ("input_ids", "attention_mask")]
        if unknown or "input_ids" not in input_names:
            raise TesseraError(f"TesseraGDNPyTorchWrapper: input_names must be input_ids (and attention_mask), "
                               f"got {list(input_names)}")
        self.tessera_model = tessera_model
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self._op = _shared_op(tessera_model)
        self._register_tessera_parameters()

    def _register_tessera_parameters(self):
        self.tessera_to_torch_names = {}       # an explicit map: "_" cannot be read back as "." reliably
        for name, info in self.tessera_model.get_parameters().items():
            torch_name = torch_parameter_name(name)
            if torch_name in self.tessera_to_torch_names.values():
                raise TesseraError(f"TesseraGDNPyTorchWrapper: parameters {name!r} and another one both become "
                                   f"{torch_name!r}")
            # the model's values, not the seed's zeros (its wrapper never synced them in: training from zeros)
            value = torch.from_numpy(info.array.copy()).to(info.torch_dtype)
            self.register_parameter(torch_name, nn.Parameter(value, requires_grad=info.requires_grad))
            self.tessera_to_torch_names[name] = torch_name

    def tessera_parameters(self) -> list:
        """The registered Parameters in the tessera model's order (the op's parameter list)."""
        return [getattr(self, t) for t in self.tessera_to_torch_names.values()]

    def forward(self, *args, **kwargs) -> torch.Tensor:
        """logits[B, S, vocab]; inputs by position (in input_names' order) or by name. input_ids are cast to
        int32 (tessera's embedding index type); attention_mask is a [B, S] 0/1 padding mask (or None)."""
        if len(args) > len(self.input_names):
            raise TesseraError(f"{type(self).__name__}.forward takes at most {len(self.input_names)} positional "
                               f"inputs {self.input_names}, got {len(args)}")
        inputs = dict(zip(self.input_names, args))
        for key, value in kwargs.items():
            if key not in self.input_names or key in inputs:
                raise TesseraError(f"{type(self).__name__}.forward: unexpected or repeated input {key!r} "
                                   f"(inputs: {self.input_names})")
            inputs[key] = value
        if "input_ids" not in inputs:
            raise TesseraError(f"{type(self).__name__}.forward needs input_ids")
        params = self.tessera_parameters()
        input_ids = inputs["input_ids"]
        if not isinstance(input_ids, torch.Tensor):
            input_ids = torch.as_tensor(input_ids)
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise TesseraError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
        bias = padding_bias(inputs.get("attention_mask"), input_ids)
        input_ids = input_ids.to(device=params[0].device, dtype=torch.int32).contiguous()
        if bias is None:
            return self._op(input_ids, params)
        padded = tst.op(causal_lm_forward_padded, config=self.tessera_model.config)   # a padding mask
        return padded(input_ids, torch.from_numpy(bias).to(device=params[0].device, dtype=params[0].dtype), params)

    def sync_parameters_to_tessera(self):
        """Copy every registered Parameter's value into the tessera model."""
        self.tessera_model.update_parameters({name: getattr(self, t).detach()
                                              for name, t in self.tessera_to_torch_names.items()})

    def sync_parameters_from_tessera(self):
        """Copy the tessera model's parameter values into the registered Parameters."""
        with torch.no_grad():
            for name, info in self.tessera_model.get_parameters().items():
                if name in self.tessera_to_torch_names:
                    getattr(self, self.tessera_to_torch_names[name]).copy_(torch.from_numpy(info.array))


class GDNPyTorchTrainer:
    """Seed 002's trainer: `training_step(batch, accumulation_steps)` runs one micro-batch; every
    `accumulation_steps` micro-batches it unscales, clips (max_grad_norm, seed: 1.0), steps the optimizer and
    the scheduler, zeroes the gradients and syncs the Parameters to the tessera model.

    The loss is compute_loss(logits, labels) / accumulation_steps: cross-entropy over every position plus
    delta_l1_weight (seed: 0.01) · Σ|p| over the Parameters whose name contains "delta" or "gate". `labels`
    are the targets of each position already (labels[b, s] is the token logits[b, s] should predict —
    input_ids shifted by one, as cut from a token stream); nothing is shifted here. Labels equal to -100 are
    ignored (torch's CrossEntropyLoss default). On CUDA the forward runs under torch.autocast and the loss is
    scaled by a GradScaler; on the CPU there is no autocast and the scaler is disabled (scale 1.0)."""

    def __init__(self, model: TesseraGDNPyTorchWrapper, optimizer: torch.optim.Optimizer,
                 scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
                 max_grad_norm: Optional[float] = 1.0, delta_l1_weight: float = 0.01,
                 autocast_dtype: torch.dtype = torch.float16):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_grad_norm = max_grad_norm
        self.delta_l1_weight = float(delta_l1_weight)
        self.device = next(model.parameters()).device
        self.use_amp = self.device.type == "cuda"      # the seed enables both unconditionally (CUDA only)
        self.autocast_dtype = autocast_dtype
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.micro_batches = 0          # since the last optimizer step
        self.optimizer_steps = 0

    def should_update_parameters(self, accumulation_steps: int = 1) -> bool:
        """True when this micro-batch completes a group of accumulation_steps (the seed calls it without
        defining it)."""
        return self.micro_batches >= accumulation_steps

    def training_step(self, batch: dict, accumulation_steps: int = 1) -> dict:
        """One micro-batch: {"input_ids", "attention_mask" (None or ones), "labels"} → {"loss" (this
        micro-batch's loss, L1 term included, not divided by accumulation_steps), "learning_rate" (the
        optimizer's after the step, as the seed reads it), "scale", "updated", "grad_norm" (before clipping,
        None without an update or without clipping)}."""
        if not isinstance(accumulation_steps, int) or isinstance(accumulation_steps, bool) or accumulation_steps < 1:
            raise TesseraError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}")
        for key in ("input_ids", "labels"):
            if key not in batch:
                raise TesseraError(f"GDNPyTorchTrainer.training_step: the batch has no {key!r} "
                                   f"(keys: {sorted(batch)})")
        self.model.train()
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.use_amp):
            outputs = self.model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"))
            loss = self.compute_loss(outputs, batch["labels"])
            loss = loss / accumulation_steps
        self.scaler.scale(loss).backward()
        self.micro_batches += 1

        updated, grad_norm = False, None
        if self.should_update_parameters(accumulation_steps):
            self.scaler.unscale_(self.optimizer)
            if self.max_grad_norm is not None:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad()
            if self.scheduler is not None:
                self.scheduler.step()
            self.model.sync_parameters_to_tessera()
            self.micro_batches = 0
            self.optimizer_steps += 1
            updated = True
        return {"loss": loss.item() * accumulation_steps,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                "scale": float(self.scaler.get_scale()),
                "updated": updated,
                "grad_norm": grad_norm}

    def compute_loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of logits[B, S, V] against labels[B, S] (mean over positions) plus
        delta_l1_weight · compute_delta_regularization()."""
        labels = torch.as_tensor(labels, device=outputs.device)
        if tuple(labels.shape) != tuple(outputs.shape[:-1]):
            raise TesseraError(f"labels have shape {tuple(labels.shape)}, the logits {tuple(outputs.shape)}: "
                               "one label per position")
        main_loss = nn.functional.cross_entropy(outputs.reshape(-1, outputs.size(-1)).float(),
                                                labels.reshape(-1).long())
        if self.delta_l1_weight == 0.0:
            return main_loss
        return main_loss + self.delta_l1_weight * self.compute_delta_regularization()

    def compute_delta_regularization(self) -> torch.Tensor:
        """Σ|p| over the Parameters whose name contains "delta" or "gate" (the delta networks' weights)."""
        reg_loss = torch.zeros((), device=self.device)
        for name, param in self.model.named_parameters():
            if "delta" in name.lower() or "gate" in name.lower():
                reg_loss = reg_loss + param.abs().sum()
        return reg_loss


__all__ = ["TesseraGDNPyTorchWrapper", "GDNPyTorchTrainer", "torch_parameter_name"]
