"""The shared trainer: device, precision, optimizer and schedule, checkpoints, resume, logging."""

from nlprec.train.checkpoint import load_checkpoint
from nlprec.train.trainer import Trainer, TrainerConfig, TrainingDiverged

__all__ = ["Trainer", "TrainerConfig", "TrainingDiverged", "load_checkpoint"]
