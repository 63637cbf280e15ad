"""Run the `nlprec` CLI and SIGKILL it at a chosen point (used by test_kill_resume.py).

    python kill_runner.py step N -- ARGS...            killed just before its N-th optimizer step
    python kill_runner.py checkpoint N F -- ARGS...    killed while writing its N-th last.pt: the
                                                       first F (0..1) of the bytes are on disk
                                                       (fsynced) in the temporary file, not renamed

Counts are of this process only. The kill is a real SIGKILL of the process running the real
command (nothing is flushed, no handler runs); only the moment is chosen, by wrapping
`Trainer._step` or `torch.save`. Linux only (the temporary file's name is read from /proc).
"""

from __future__ import annotations

import io
import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_before_step(n: int) -> None:
    from nlprec.train import trainer

    original = trainer.Trainer._step
    count = [0]

    def step(self, micro_batches):
        count[0] += 1
        if count[0] == n:
            _die()
        return original(self, micro_batches)

    trainer.Trainer._step = step


def _kill_while_writing_checkpoint(n: int, fraction: float) -> None:
    import torch

    real_save = torch.save
    count = [0]

    def save(obj, f, *args, **kwargs):
        target = os.readlink(f"/proc/self/fd/{f.fileno()}") if hasattr(f, "fileno") else ""
        if os.path.basename(target).startswith(".last.pt."):  # atomic_write's temporary file
            count[0] += 1
            if count[0] == n:
                buffer = io.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                data = buffer.getvalue()
                f.write(data[:int(len(data) * fraction)])
                f.flush()
                os.fsync(f.fileno())
                _die()
        return real_save(obj, f, *args, **kwargs)

    torch.save = save  # nlprec.train.checkpoint calls torch.save through the module


def main(argv: list[str]) -> None:
    split = argv.index("--")
    mode, numbers, args = argv[0], argv[1:split], argv[split + 1:]
    if mode == "step":
        _kill_before_step(int(numbers[0]))
    elif mode == "checkpoint":
        _kill_while_writing_checkpoint(int(numbers[0]), float(numbers[1]))
    elif mode != "none":
        raise SystemExit(f"unknown mode {mode!r}")
    from nlprec_cli.main import main as nlprec_main

    nlprec_main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
